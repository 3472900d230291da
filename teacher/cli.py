"""`ares-teacher`: fill a feedback cache from a JSONL file of items, and inspect or share the cache.

    ares-teacher score --input items.jsonl --teacher openai:gpt-4o --cache feedback.sqlite
    ares-teacher score ... --batch            # OpenAI Batch API / Anthropic Message Batches (half price)
    ares-teacher stats --cache feedback.sqlite
    ares-teacher export --cache feedback.sqlite --to shared.jsonl
    ares-teacher import --cache feedback.sqlite --from shared.jsonl

Exit status: 0 all items cached (ok or failed with a reason); 1 the job stopped on an error (the provider
rejected the key or does not know the model, the cache stayed locked); 2 a usage error, nothing sent (a bad
flag or spec, a missing or malformed input file, a path that would destroy the cache, a missing key);
3 work still in progress elsewhere (batches running with --no-wait, or items another job on the same cache
is sending; re-run to collect); 4 budget reached; 130 interrupted.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from teacher.names import SPEC_HELP, TASKS

if TYPE_CHECKING:  # the job machinery (asyncio, SDKs, tqdm, yaml) is imported when a job starts
    from teacher.cache import FeedbackCache
    from teacher.client import Teacher
    from teacher.jobs.items import JobItem
    from teacher.jobs.runner import JobReport, JobRunner

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PENDING, EXIT_BUDGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag of the parser and its subcommands."""
    out = []
    for action in parser._actions:
        out += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _option_strings(sub)
    return sorted(set(out))


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """ " (did you mean ...?)" for a misspelt flag or subcommand named in an argparse error message."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        names = re.findall(r"'([^']*)'", choice.group(2))
        close = difflib.get_close_matches(choice.group(1), names, n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""
    unknown = re.search(r"unrecognized arguments: (.*)", message)
    if unknown:
        flags = _option_strings(parser)
        for word in unknown.group(1).split():
            close = difflib.get_close_matches(word.split("=")[0], flags, n=1) if word.startswith("-") else []
            if close:
                return f" (did you mean {close[0]}?)"
    return ""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are two lines (the error, with "did you mean" for a near miss, and where the
    options are listed) and exit with the usage status 2."""

    def error(self, message: str) -> NoReturn:
        hint = _suggestion(self, message)
        self.exit(
            EXIT_USAGE, f"{self.prog}: error: {message}{hint}\n(run '{self.prog} --help' for the options)\n"
        )


def number(
    what: str, kind: type = float, minimum: float = 0.0, inclusive: bool = False
) -> Callable[[str], Any]:
    """An argparse type: a finite `kind` above `minimum` (or at least it, when `inclusive`); the message
    says what the flag expects (argparse prefixes the flag's name)."""
    bound = f"at least {minimum:g}" if inclusive else f"greater than {minimum:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        return value

    return parse


def _job_parser(sub: argparse._SubParsersAction, task: str) -> None:
    p = sub.add_parser(task, help=f"run the {task!r} task over a JSONL file and cache the results")
    p.add_argument("--input", required=True, type=Path, help="JSONL file, one item per line")
    p.add_argument("--teacher", required=True, help=f"teacher spec: {SPEC_HELP}")
    p.add_argument("--cache", required=True, type=Path, help="SQLite feedback cache (created if missing)")
    p.add_argument("--output", type=Path, help="also write one result per item to this JSONL file")
    p.add_argument("--base-url", help="provider endpoint (a proxy, a local server)")
    seconds, dollars = number("seconds"), number("dollars")
    p.add_argument("--timeout", type=seconds, default=120.0, help="seconds per request before it is retried")
    p.add_argument(
        "--concurrency",
        type=number("a whole number", int, 1, True),
        default=16,
        help="requests in flight at once",
    )
    p.add_argument(
        "--rpm", type=number("requests per minute"), help="requests per minute (default: unlimited)"
    )
    p.add_argument(
        "--tpm", type=number("tokens per minute"), help="tokens per minute (estimated before sending)"
    )
    p.add_argument("--budget", type=dollars, help="dollars this run may spend (per run, not cumulative)")
    p.add_argument(
        "--budget-total",
        type=dollars,
        help="dollars every run on this cache may spend together (counted from the cache's spend ledger)",
    )
    p.add_argument(
        "--budget-tokens",
        type=number("tokens", int),
        help="tokens this run may spend (models without a price)",
    )
    p.add_argument("--prices", type=Path, help="YAML mapping model -> [usd per 1M input, per 1M output]")
    p.add_argument("--retry-failed", action="store_true", help="send again items cached as failed")
    p.add_argument(
        "--max-retries",
        type=number("a whole number", int, 0, True),
        default=6,
        help="retries of 429/5xx/timeouts per request",
    )
    p.add_argument("--no-repair", action="store_true", help="no second turn for a reply that fails parsing")
    p.add_argument("--batch", action="store_true", help="use the provider's batch API (openai, anthropic)")
    p.add_argument("--poll-interval", type=seconds, default=30.0, help="seconds between batch status polls")
    p.add_argument("--no-wait", action="store_true", help="with --batch: submit, collect what is ready, exit")
    p.add_argument(
        "-q",
        "--quiet",
        "--no-progress",
        dest="quiet",
        action="store_true",
        help="no progress (a bar on a terminal, else a plain line per tenth of the work or 30 s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ares-teacher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and warnings")
    sub = parser.add_subparsers(dest="command", required=True)
    for task in TASKS:
        _job_parser(sub, task)
    p = sub.add_parser("stats", help="counts, failures, tokens and cost in a cache")
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("export", help="write a cache as JSONL (to share it)")
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--to", required=True, type=Path)
    p = sub.add_parser("import", help="merge a JSONL export into a cache")
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--from", dest="source", required=True, type=Path)
    p.add_argument("--overwrite", action="store_true", help="replace rows whose key exists")
    return parser


class UsageProblem(ValueError):
    """A path or setting on the command line that cannot work (exit 2)."""


def make_job_teacher(args: argparse.Namespace) -> Teacher:
    from teacher.client import make_teacher

    options: dict[str, Any] = {}
    if args.base_url:
        options["base_url"] = args.base_url
    if args.teacher.split(":", 1)[0] in ("openai", "anthropic", "openai-compatible"):  # the rest: no network
        options["timeout"] = args.timeout
    return make_teacher(args.teacher, repair=not args.no_repair, **options)


def write_output(path: Path, runner: JobRunner, cache: FeedbackCache, items: list[JobItem]) -> int:
    """One line per item: its id, cache key and result (or `pending` if it has none yet)."""
    import json

    n = 0
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            key = runner.key(runner.request(item))
            fb = cache.get(key)
            row: dict[str, Any] = {"item_id": item.item_id, "key": key, "task": runner.task}
            if fb is None:
                row["status"] = "pending"
            else:
                row.update(status="ok" if fb.ok else "failed", failure=fb.failure, **fb.payload())
                row.update(model=fb.model, prompt_version=fb.prompt_version, cost=fb.cost)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def check_paths(args: argparse.Namespace) -> None:
    """Refuse missing inputs and paths that would destroy the cache or the input."""
    from teacher.cache import CacheError, is_cache_file, same_file

    for flag, path in (("--input", args.input), ("--prices", args.prices)):
        if path is not None and not path.is_file():
            raise UsageProblem(f"{flag} {path}: {'is a folder' if path.is_dir() else 'no such file'}")
    if args.cache.is_dir():
        raise UsageProblem(f"--cache {args.cache}: is a folder, expected a SQLite file (created if missing)")
    if same_file(args.cache, args.input):
        raise CacheError(f"--cache {args.cache} is the input file: give the cache its own file")
    if args.output is not None:
        if is_cache_file(args.output, args.cache):
            raise CacheError(f"--output {args.output} is the cache itself: writing there would destroy it")
        if same_file(args.output, args.input):
            raise CacheError(f"--output {args.output} is the input file: writing there would destroy it")


async def run_job(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from teacher.cache import FeedbackCache
    from teacher.jobs.items import read_items
    from teacher.jobs.progress import JobProgress
    from teacher.jobs.runner import JobConfig, JobRunner
    from teacher.pricing import PriceTable

    check_paths(args)
    items = read_items(args.input, args.command)
    prices = PriceTable.from_yaml(args.prices) if args.prices else PriceTable()
    config = JobConfig(
        concurrency=args.concurrency,
        rpm=args.rpm,
        tpm=args.tpm,
        budget_usd=args.budget,
        budget_total_usd=args.budget_total,
        budget_tokens=args.budget_tokens,
        retry_failed=args.retry_failed,
        max_retries=args.max_retries,
    )
    teacher = make_job_teacher(args)
    if args.batch:
        from teacher.batch import batch_provider

        batch_provider(teacher.backend)  # refuses a teacher without a batch API before the cache is made
    cache = FeedbackCache(args.cache)
    progress = JobProgress.auto(len(items), quiet=args.quiet, desc=args.command)
    runner = JobRunner(teacher, cache, args.command, config, prices, on_progress=progress.update)
    if args.batch:
        from teacher.batch import BatchJob

        job: Any = BatchJob(runner, poll_s=args.poll_interval, wait=not args.no_wait)
    else:
        job = runner
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print(
                "\nstopping: no new requests; in-flight ones finish (Ctrl-C again to abandon them)",
                file=sys.stderr,
            )
            runner.stop()
        else:
            runner.abandon()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_interrupt)
    try:
        report: JobReport = await job.run(items)
    finally:  # whatever happened, what is cached is written out and summed up
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        progress.close()
        await teacher.aclose()
        if args.output:
            write_output(args.output, runner, cache, items)
        cache.close()
        print(summary(runner.report, args.command), file=sys.stderr)
    if report.stopped == "budget":
        print(report.message, file=sys.stderr)
        return EXIT_BUDGET
    if report.stopped == "error":
        print(f"error: {report.message}", file=sys.stderr)
        return EXIT_ERROR
    if report.stopped == "pending":
        print(report.message, file=sys.stderr)
        return EXIT_PENDING
    if report.stopped == "interrupted":
        if report.message:
            print(report.message, file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def summary(report: JobReport, task: str) -> str:
    cost = f"${report.cost:.4f}" if report.cost_known else "unknown (no price for this model)"
    extra = "".join(
        f"; {n} {what}"
        for n, what in (
            (report.claimed_elsewhere, "left to another job on this cache"),
            (
                report.uncached_failures,
                "failed by an unexpected error (not cached; a re-run sends them again)",
            ),
            (report.repairs_skipped, "repair turns skipped to stay within the budget"),
        )
        if n
    )
    return (
        f"{task}: {report.total} items: {report.cached} cached, {report.done} done, {report.failed} failed, "
        f"{report.skipped} not sent; {report.retries} retries; {report.input_tokens}+{report.output_tokens} "
        f"tokens; cost {cost}; {report.elapsed_s:.1f}s{extra}"
    )


def print_stats(cache: FeedbackCache, as_json: bool) -> None:
    stats = cache.stats()
    if as_json:
        import json

        print(json.dumps(stats, indent=1))
        return
    print(f"{cache.path}: {stats['total']} rows")
    print(f"{'task':<10}{'ok':>8}{'failed':>8}{'in tokens':>12}{'out tokens':>12}{'cost $':>10}")
    for task, s in sorted(stats["tasks"].items()):
        print(
            f"{task:<10}{s['ok']:>8}{s['failed']:>8}{s['input_tokens']:>12}{s['output_tokens']:>12}"
            f"{s['cost']:>10.4f}"
        )
    for reason, n in stats["top_failures"]:
        print(f"  failed x{n}: {reason}")


def run_cache_command(args: argparse.Namespace) -> int:
    """`stats`, `export` and `import`."""
    from teacher.cache import FeedbackCache

    if args.cache.is_dir():
        raise UsageProblem(f"--cache {args.cache}: is a folder, expected a SQLite file")
    if args.command != "import" and not args.cache.exists():
        raise UsageProblem(f"--cache {args.cache}: no such file")
    if args.command == "import" and not args.source.is_file():
        raise UsageProblem(
            f"--from {args.source}: {'is a folder' if args.source.is_dir() else 'no such file'}"
        )
    cache = FeedbackCache(args.cache)
    try:
        if args.command == "stats":
            print_stats(cache, args.json)
        elif args.command == "export":
            print(f"exported {cache.export_jsonl(args.to)} rows to {args.to}")
        else:
            print(
                f"imported {cache.import_jsonl(args.source, overwrite=args.overwrite)} rows from {args.source}"
            )
    finally:
        cache.close()
    return EXIT_OK


def exit_status(err: Exception) -> int | None:
    """The exit status of an error that ends a command with its message (None: a bug, let it raise): 2 for
    what the user must change (flags, specs, files, keys), 1 for the rest (a locked cache, a provider's)."""
    from teacher.records import MissingAPIKeyError, TeacherError
    from teacher.sqlite_open import CacheLockedError

    if isinstance(err, CacheLockedError):
        return EXIT_ERROR
    if isinstance(err, (ValueError, OSError, MissingAPIKeyError)):  # UsageError, BadSpecError, input errors
        return EXIT_USAGE
    if isinstance(err, TeacherError):
        return EXIT_ERROR
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        if args.command in TASKS:
            import asyncio

            return asyncio.run(run_job(args))
        return run_cache_command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        status = exit_status(err)
        if status is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())

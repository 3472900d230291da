"""`ares-teacher`: cache teacher feedback for a JSONL file of items, and inspect or share the cache.

ares-teacher score --input items.jsonl --teacher openai:gpt-4o --cache feedback.sqlite --concurrency 32
ares-teacher stats --cache feedback.sqlite
ares-teacher export --cache feedback.sqlite --output shared.jsonl
ares-teacher import --cache feedback.sqlite --input shared.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from teacher.cache import FeedbackCache
from teacher.cached import CachedTeacher
from teacher.client import make_teacher
from teacher.jobs import JobConfig, read_items, run_job
from teacher.pricing import PriceTable
from teacher.records import BudgetExceededError, TeacherError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ares-teacher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for task in ("score", "correct", "judge"):
        p = sub.add_parser(task, help=f"cache '{task}' feedback for every item of --input")
        p.add_argument("--input", required=True, help="JSONL items (problem fields + task fields).")
        p.add_argument(
            "--teacher", required=True, help="Teacher spec, e.g. openai:gpt-4o, anthropic:MODEL, reference."
        )
        p.add_argument("--cache", required=True, help="SQLite feedback cache.")
        p.add_argument("--base-url", default=None, help="Override the provider's API address.")
        p.add_argument("--timeout", type=float, default=120.0, help="Per-request timeout in seconds.")
        p.add_argument("--concurrency", type=int, default=16, help="Requests in flight.")
        p.add_argument("--rpm", type=int, default=0, help="Requests-per-minute limit.")
        p.add_argument("--tpm", type=int, default=0, help="Tokens-per-minute limit (estimated).")
        p.add_argument("--max-retries", type=int, default=6, help="Retries of transient failures.")
        p.add_argument(
            "--budget", type=float, default=None, help="Stop launching requests past this many USD."
        )
        p.add_argument(
            "--prices", default=None, help="YAML price table: model: [input_per_1M, output_per_1M]."
        )
        p.add_argument("--retry-failed", action="store_true", help="Re-send items cached as failed.")
        p.add_argument(
            "--no-repair", action="store_true", help="Do not retry a rejected reply with a repair prompt."
        )
        p.add_argument("--output", default=None, help="Also write results as JSONL here.")
        p.add_argument("--no-progress", action="store_true", help="No progress bar.")
    p = sub.add_parser("stats", help="counts, failures, tokens and cost in a cache")
    p.add_argument("--cache", required=True)
    p = sub.add_parser("export", help="write a cache as JSONL (to share)")
    p.add_argument("--cache", required=True)
    p.add_argument("--output", required=True)
    p = sub.add_parser("import", help="merge a JSONL export into a cache")
    p.add_argument("--cache", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--overwrite", action="store_true", help="Replace rows with the same key.")
    return parser


def _job(args: argparse.Namespace) -> int:
    items = read_items(args.input, args.command)
    options = {"timeout": args.timeout} if not args.teacher.startswith(("reference", "hf:")) else {}
    if args.base_url:
        options["base_url"] = args.base_url
    teacher = make_teacher(args.teacher, repair=not args.no_repair, **options)
    prices = PriceTable.from_yaml(args.prices) if args.prices else PriceTable()
    cached = CachedTeacher(teacher, FeedbackCache(args.cache), prices, retry_failed=args.retry_failed)
    cfg = JobConfig(
        concurrency=args.concurrency,
        rpm=args.rpm,
        tpm=args.tpm,
        max_retries=args.max_retries,
        budget=args.budget,
        progress=not args.no_progress,
    )
    if args.budget is not None and prices.cost(teacher.model, 1, 1) is None:
        print(
            f"warning: no price for model {teacher.model!r}; the budget cannot count its cost (use --prices)",
            file=sys.stderr,
        )
    code = 0
    try:
        summary = asyncio.run(run_job(cached, args.command, items, cfg))
    except BudgetExceededError as err:
        print(f"ares-teacher: {err}", file=sys.stderr)
        return 3
    print(json.dumps({k: v for k, v in vars(summary).items()}, indent=1))
    if summary.stopped == "interrupted":
        code = 130
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            for (item_id, problem, task_args), request in zip(
                items, (teacher.build(args.command, p, *a) for _, p, a in items), strict=True
            ):
                fb = cached.lookup(request)
                f.write(
                    json.dumps(
                        {
                            "item_id": item_id,
                            "cached": fb is not None,
                            **({"ok": fb.ok, "failure": fb.failure, **fb.payload()} if fb else {}),
                        }
                    )
                    + "\n"
                )
    return code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("score", "correct", "judge"):
            return _job(args)
        cache = FeedbackCache(args.cache)
        if args.command == "stats":
            print(json.dumps(cache.stats(), indent=1))
        elif args.command == "export":
            print(f"exported {cache.export_jsonl(args.output)} rows to {args.output}")
        elif args.command == "import":
            print(f"imported {cache.import_jsonl(args.input, args.overwrite)} new rows into {args.cache}")
        return 0
    except (TeacherError, ValueError, FileNotFoundError) as err:
        print(f"ares-teacher: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

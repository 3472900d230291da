"""Compare finished SPPO/PPO RLHF runs: held-out figures over seeds with Welch intervals, training curves, and
(with --judge) the judge's head-to-head win rate of each run's samples over the first run's.

  python recipes/sppo_compare.py --runs ppo=runs/imdb-ppo,sppo=runs/imdb-sppo --out runs/imdb-compare
  python recipes/sppo_compare.py --runs ppo=runs/tldr-ppo,sppo=runs/tldr-sppo --judge openai:gpt-4o --out runs/tldr-compare
"""

import argparse
import sys
from pathlib import Path

from align.user_errors import ArgumentParser, UserError, run_command


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="sppo_compare.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", required=True, help="name=run_folder,... (the first is the baseline)")
    p.add_argument("--out", default="runs/sppo-compare", help="Folder for comparison.md/.json/.png.")
    p.add_argument(
        "--judge", default="", help="Teacher spec for a head-to-head judgment (e.g. openai:gpt-4o)."
    )
    p.add_argument("--judge-cache", default="", help="Judge cache file (default: <out>/judge.sqlite).")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    runs = {}
    for item in args.runs.split(","):
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_dir():
            parser().error(f"--runs item {item!r}: expected name=existing_run_folder")
        if not (Path(path) / "rlhf_state.json").is_file():
            parser().error(
                f"--runs item {item!r}: {path} holds no rlhf_state.json (not an SPPO/PPO run folder)"
            )
        runs[name.strip()] = Path(path)
    if len(runs) < 2:
        parser().error("--runs needs at least two runs")

    def work() -> int:
        from align.quiet_libraries import quiet_libraries

        quiet_libraries()
        judge = None
        if args.judge:
            from align.rlhf.judge import SummaryJudge
            from teacher import CachedTeacher, FeedbackCache, make_teacher

            Path(args.out).mkdir(parents=True, exist_ok=True)
            cache = FeedbackCache(args.judge_cache or str(Path(args.out) / "judge.sqlite"))
            try:
                teacher = make_teacher(args.judge)
            except ValueError as err:
                raise UserError(f"--judge {args.judge}: {err}") from None
            judge = SummaryJudge(CachedTeacher(teacher, cache))
        from align.rlhf.compare import compare_runs

        compare_runs(runs, Path(args.out), judge)
        print(f"[sppo-compare] {Path(args.out) / 'comparison.md'}")
        return 0

    return run_command(work, "sppo_compare")


if __name__ == "__main__":
    sys.exit(main())

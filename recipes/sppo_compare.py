"""Compare finished SPPO/PPO RLHF runs: held-out figures over seeds with Welch intervals, training curves, and
(with --judge) the judge's head-to-head win rate of each run's samples over the first run's.

python recipes/sppo_compare.py --runs ppo=runs/imdb-ppo,sppo=runs/imdb-sppo --out runs/imdb-compare
python recipes/sppo_compare.py --runs ppo=runs/tldr-ppo,sppo=runs/tldr-sppo --judge openai:gpt-4o --out runs/tldr-compare
"""

import argparse
from pathlib import Path

from align.rlhf.compare import compare_runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", required=True, help="name=run_folder,... (the first is the baseline)")
    parser.add_argument("--out", default="runs/sppo-compare", help="Folder for comparison.md/.json/.png.")
    parser.add_argument(
        "--judge", default="", help="Teacher spec for a head-to-head judgment (e.g. openai:gpt-4o)."
    )
    parser.add_argument("--judge-cache", default="", help="Judge cache file (default: <out>/judge.sqlite).")
    args = parser.parse_args(argv)
    runs = {}
    for item in args.runs.split(","):
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_dir():
            parser.error(f"--runs item {item!r}: expected name=existing_run_folder")
        runs[name.strip()] = Path(path)
    if len(runs) < 2:
        parser.error("--runs needs at least two runs")
    judge = None
    if args.judge:
        from align.rlhf.judge import SummaryJudge
        from teacher import CachedTeacher, FeedbackCache, make_teacher

        Path(args.out).mkdir(parents=True, exist_ok=True)
        cache = FeedbackCache(args.judge_cache or str(Path(args.out) / "judge.sqlite"))
        judge = SummaryJudge(CachedTeacher(make_teacher(args.judge), cache))
    compare_runs(runs, Path(args.out), judge)
    print(f"[sppo-compare] {Path(args.out) / 'comparison.md'}")


if __name__ == "__main__":
    main()

"""How long the command lines take to answer `--help`, an argument error and `ares-teacher stats`.

    python benchmarks/cli_start.py --repeats 7

Every measurement is a fresh process (interpreter start included), the commands alternating within a round so
that a change in the machine's load touches them all alike; figures are medians with the min-max. A Python that
does nothing (`python -c pass`) is the floor. Each command also reports whether torch was imported (from
`python -X importtime`'s log), since the goal is that help and argument errors never import it.
Writes benchmarks/results/cli_start.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commands(cache: Path) -> dict[str, list[str]]:
    """Label -> argv (run from the repository root)."""
    py = sys.executable
    teacher = [py, "-m", "teacher.cli"]
    return {
        "python -c pass (floor)": [py, "-c", "pass"],
        "python -m control --help": [py, "-m", "control", "--help"],
        "python -m control train --algo dqn (error)": [py, "-m", "control", "train", "--algo", "dqn"],
        "python -m control train --steps 0 (error)": [py, "-m", "control", "train", "--steps", "0"],
        "python recipes/ares_scienceqa.py --help": [py, "recipes/ares_scienceqa.py", "--help"],
        "python recipes/ares_scienceqa.py --nope (error)": [py, "recipes/ares_scienceqa.py", "--nope"],
        "python recipes/sppo_imdb.py --help": [py, "recipes/sppo_imdb.py", "--help"],
        "ares-teacher --help": [*teacher, "--help"],
        "ares-teacher stats --cache C": [*teacher, "stats", "--cache", str(cache)],
    }


def run_once(argv: list[str]) -> tuple[float, int, bool]:
    """Wall seconds, exit code, and whether torch was imported."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    torch = any(line.rstrip().endswith("| torch") for line in proc.stderr.splitlines())
    return seconds, proc.returncode, torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds")
    parser.add_argument("--out", default="benchmarks/results/cli_start.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "feedback.sqlite"
        sys.path.insert(0, str(ROOT))
        from teacher.cache import FeedbackCache

        FeedbackCache(cache)  # an empty cache, created as a job would
        cmds = commands(cache)
        for argv in cmds.values():  # warm the OS file cache once, untimed
            run_once(argv)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        info: dict[str, dict] = {}
        for i in range(args.repeats):
            for label in cmds if i % 2 == 0 else list(cmds)[::-1]:
                seconds, rc, torch = run_once(cmds[label])
                times[label].append(seconds)
                info[label] = {"exit_code": rc, "imports_torch": torch}
    load = os.getloadavg()
    rows = {
        k: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v), "runs": v, **info[k]}
        for k, v in times.items()
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"repeats": args.repeats, "load_after": load, "commands": rows}, indent=1) + "\n"
    )
    print(f"{args.repeats} alternating rounds; load average after {load[0]:.1f}\n")
    print("| command | median s | min-max s | exit code | imports torch |")
    print("|---|---|---|---|---|")
    for k, r in rows.items():
        print(
            f"| `{k}` | {r['median_s']:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} | {r['exit_code']} | "
            f"{'yes' if r['imports_torch'] else 'no'} |"
        )


if __name__ == "__main__":
    main()

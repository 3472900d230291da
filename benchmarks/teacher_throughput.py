"""Teacher caching throughput: N scoring requests against the local protocol server with added latency.

    python benchmarks/teacher_throughput.py --requests 2000 --concurrency 32 --latency-ms 50 --sequential 200

Measures, with the job runner that `ares-teacher` uses (`teacher.jobs.JobRunner`): (1) the concurrent job,
(2) a sequential loop (concurrency 1) over the first `--sequential` items (per request, extrapolated to keep
the run short; pass `--sequential 2000` for the full loop), (3) the re-run served from the cache, and peak
memory (peak RSS of the process; `--tracemalloc` adds Python's traced peak, at a cost in speed); prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from teacher import FeedbackCache, make_teacher  # noqa: E402
from teacher.jobs import JobConfig, JobItem, JobProblem, JobReport, JobRunner  # noqa: E402


def run(base: str, cache: Path, items: list[JobItem], concurrency: int) -> JobReport:
    teacher = make_teacher("openai:gpt-4o", base_url=base, timeout=30)
    runner = JobRunner(teacher, FeedbackCache(cache), "score", JobConfig(concurrency=concurrency))

    async def go() -> JobReport:
        try:
            return await runner.run(items)
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--out", default="benchmarks/results/teacher_throughput.json")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "teacher_server.py"),
            "--port",
            str(port),
            "--latency-ms",
            str(args.latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    server.stdout.readline()
    try:
        base = f"http://127.0.0.1:{port}/v1"
        items = [
            JobItem(
                f"i{k}",
                JobProblem(
                    str(k),
                    f"Question {k}: which pole attracts?",
                    ("north", "south"),
                    0,
                    lecture="Opposite poles attract.",
                ),
                ([f"Sentence {k}.", "Poles attract."],),
            )
            for k in range(args.requests)
        ]
        tmp = Path(tempfile.mkdtemp())
        if args.tracemalloc:  # slows Python allocations down a lot: the timing is then not representative
            tracemalloc.start()
        summary = run(base, tmp / "bench.sqlite", items, args.concurrency)
        traced_peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else 0
        tracemalloc.stop()
        concurrent_s = summary.elapsed_s
        assert summary.done == args.requests and summary.failed == 0, summary

        seq_items = [JobItem(i.item_id, i.problem, (i.args[0] + ["seq"],)) for i in items[: args.sequential]]
        seq = run(base, tmp / "seq.sqlite", seq_items, 1)
        assert seq.done == len(seq_items), seq
        seq_per_request = seq.elapsed_s / len(seq_items)

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
            before = sum(json.loads(r.read())["requests"].values())
        t0 = time.perf_counter()
        again = run(base, tmp / "bench.sqlite", items, args.concurrency)
        rerun_s = time.perf_counter() - t0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
            after = sum(json.loads(r.read())["requests"].values())
        result = {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "latency_ms": args.latency_ms,
            "concurrent_s": concurrent_s,
            "concurrent_req_per_s": args.requests / concurrent_s,
            "sequential_req_per_s": 1 / seq_per_request,
            "sequential_measured_on": len(seq_items),
            "speedup": (args.requests / concurrent_s) * seq_per_request,
            "rerun_s": rerun_s,
            "rerun_lookup_s": again.elapsed_s,
            "rerun_ms_per_item": 1000 * rerun_s / args.requests,
            "rerun_cached": again.cached,
            "rerun_server_requests": after - before,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_traced_mb_concurrent": traced_peak / 2**20 if args.tracemalloc else None,
        }
    finally:
        server.kill()
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    for k, v in result.items():
        print(f"{k:28s} {v:.3f}" if isinstance(v, float) else f"{k:28s} {v}")


if __name__ == "__main__":
    main()

"""Teacher caching throughput: N scoring requests against the local protocol server with added latency.

    python benchmarks/teacher_throughput.py --requests 2000 --concurrency 32 --latency-ms 50 --sequential 200 \
        --repeats 7

Measures, with the job runner that `ares-teacher` uses (`teacher.jobs.JobRunner`, claims and spend ledger
included): (1) the concurrent job, (2) a sequential loop (concurrency 1) over the first `--sequential` items
(per request, extrapolated to keep the run short; pass `--sequential 2000` for the full loop), (3) the re-run
served from the cache, and peak memory (peak RSS of the process; `--tracemalloc` adds Python's traced peak,
at a cost in speed). Each of `--repeats` rounds measures (1)-(3) afresh on new caches, so a loaded machine
shows as spread: the table gives the median and min-max over rounds, with the 1-minute load average sampled
before and after every round. Writes every round and the summary as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
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


def server_requests(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
        return sum(json.loads(r.read())["requests"].values())


def one_round(port: int, items: list[JobItem], args: argparse.Namespace, tmp: Path) -> dict:
    """One measurement of the concurrent job, the sequential loop and the cached re-run."""
    base = f"http://127.0.0.1:{port}/v1"
    load_before = os.getloadavg()[0]
    if args.tracemalloc:  # slows Python allocations down a lot: the timing is then not representative
        tracemalloc.start()
    summary = run(base, tmp / "bench.sqlite", items, args.concurrency)
    traced_peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else 0
    tracemalloc.stop()
    assert summary.done == args.requests and summary.failed == 0, summary

    seq_items = [JobItem(i.item_id, i.problem, (i.args[0] + ["seq"],)) for i in items[: args.sequential]]
    seq = run(base, tmp / "seq.sqlite", seq_items, 1)
    assert seq.done == len(seq_items), seq
    seq_per_request = seq.elapsed_s / len(seq_items)

    before = server_requests(port)
    t0 = time.perf_counter()
    again = run(base, tmp / "bench.sqlite", items, args.concurrency)
    rerun_s = time.perf_counter() - t0
    return {
        "concurrent_s": summary.elapsed_s,
        "concurrent_req_per_s": args.requests / summary.elapsed_s,
        "sequential_req_per_s": 1 / seq_per_request,
        "speedup": (args.requests / summary.elapsed_s) * seq_per_request,
        "rerun_s": rerun_s,
        "rerun_ms_per_item": 1000 * rerun_s / args.requests,
        "rerun_cached": again.cached,
        "rerun_server_requests": server_requests(port) - before,
        "peak_traced_mb_concurrent": traced_peak / 2**20 if args.tracemalloc else None,
        "load_1min_before": load_before,
        "load_1min_after": os.getloadavg()[0],
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7, help="rounds; the table shows median and min-max")
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
    rounds = []
    try:
        for k in range(args.repeats):
            rounds.append(one_round(port, items, args, Path(tempfile.mkdtemp())))
            r = rounds[-1]
            print(
                f"round {k + 1}/{args.repeats}: {r['concurrent_req_per_s']:.0f} req/s concurrent, "
                f"{r['sequential_req_per_s']:.1f} sequential, speedup {r['speedup']:.1f}x, "
                f"load {r['load_1min_before']:.2f}->{r['load_1min_after']:.2f}",
                flush=True,
            )
    finally:
        server.kill()
    keys = ("concurrent_req_per_s", "sequential_req_per_s", "speedup", "rerun_ms_per_item", "concurrent_s")
    loads = [r["load_1min_before"] for r in rounds] + [r["load_1min_after"] for r in rounds]
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "sequential_measured_on": args.sequential,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "summary": {key: spread([r[key] for r in rounds]) for key in keys},
        "load_1min": spread(loads),
        "rerun_server_requests": sum(r["rerun_server_requests"] for r in rounds),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rounds": rounds,
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{'':24s}{'median':>10s}{'min':>10s}{'max':>10s}")
    for key, s in result["summary"].items():
        print(f"{key:24s}{s['median']:10.2f}{s['min']:10.2f}{s['max']:10.2f}")
    load = result["load_1min"]
    print(
        f"load (1 min, {result['cpus']} cpus): median {load['median']:.2f}, {load['min']:.2f}-{load['max']:.2f}"
    )
    print(
        f"re-run requests to the server: {result['rerun_server_requests']}; peak RSS {result['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()

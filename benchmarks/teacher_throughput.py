"""Teacher caching throughput: N scoring requests against the local protocol server with added latency.

    python benchmarks/teacher_throughput.py --requests 2000 --concurrency 32 --latency-ms 50 --sequential 200

Measures (1) the concurrent job, (2) a sequential loop over the first `--sequential` items (extrapolated per
request, to keep the run short), (3) the re-run served from the cache, and peak memory; prints a table and
writes JSON.
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from teacher import CachedTeacher, FeedbackCache, make_teacher  # noqa: E402
from teacher.caching_job import JobConfig, JobProblem, run_job  # noqa: E402


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
            (
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
        teacher = make_teacher("openai:gpt-4o", base_url=base, timeout=30)
        cached = CachedTeacher(teacher, FeedbackCache(tmp / "bench.sqlite"))
        t0 = time.perf_counter()
        summary = asyncio.run(
            run_job(cached, "score", items, JobConfig(concurrency=args.concurrency, progress=False))
        )
        concurrent_s = time.perf_counter() - t0
        assert summary.done == args.requests and summary.failed == 0, summary

        seq_teacher = make_teacher("openai:gpt-4o", base_url=base, timeout=30)
        seq_cache = CachedTeacher(seq_teacher, FeedbackCache(tmp / "seq.sqlite"))
        seq_items = [(i, p, (a[0] + ["seq"],)) for i, p, a in items[: args.sequential]]

        async def sequential() -> None:
            for _, problem, (sentences,) in seq_items:
                await seq_cache.ascore_sentences(problem, sentences)

        t0 = time.perf_counter()
        asyncio.run(sequential())
        seq_per_request = (time.perf_counter() - t0) / len(seq_items)

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
            before = sum(json.loads(r.read())["requests"].values())
        cached2 = CachedTeacher(
            make_teacher("openai:gpt-4o", base_url=base), FeedbackCache(tmp / "bench.sqlite")
        )
        t0 = time.perf_counter()
        again = asyncio.run(run_job(cached2, "score", items, JobConfig(progress=False)))
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
            "speedup": (1 / seq_per_request) and (args.requests / concurrent_s) * seq_per_request,
            "rerun_s": rerun_s,
            "rerun_ms_per_item": 1000 * rerun_s / args.requests,
            "rerun_cached": again.cached,
            "rerun_server_requests": after - before,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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

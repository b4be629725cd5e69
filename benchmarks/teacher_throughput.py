"""Throughput of a teacher round: how close does TGITeacher get to the concurrency bound ``ceil(n / C) * L``?

A local TGI-protocol server (the project's own, with a scripted backend that answers valid JSON after ``L`` seconds,
i.e. a server with enough capacity and a fixed per-request latency) runs in a separate process, like a real teacher.
The client sends a round of ``n`` requests with at most ``C`` in flight, and the achieved round time is compared with
the bound ``ceil(n / C) * L`` (ratio bound / achieved; the goal is >= 0.9) and with a sequential client (``C = 1``),
measured on the full round, not extrapolated.

Usage::

    python benchmarks/teacher_throughput.py                 # L=200 ms, C=16, n=128, writes results JSON
    python benchmarks/teacher_throughput.py --n 64 --concurrency 8 --latency 0.1 --output /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _serve(latency_s: float, queue: mp.Queue, stop: mp.Event) -> None:  # runs in the server process
    from hf_activekd.server import ScriptedBackend, TeacherServer

    server = TeacherServer(ScriptedBackend(latency_s=latency_s, model_id="scripted-latency")).start()
    queue.put(server.url)
    stop.wait()
    queue.put(server.stats)
    server.stop()


def make_requests(n: int, round_name: str) -> list:
    from hf_activekd.teachers import TeacherRequest, samples_schema

    labels = ["billing", "refund", "card_lost", "transfer"]
    return [
        TeacherRequest(
            key=f"{round_name}/{labels[i % 4]}/{i}",
            label=labels[i % 4],
            num_samples=4,
            messages=[
                {"role": "system", "content": "You write training data for a banking intent classifier."},
                {"role": "user", "content": f"Write 4 new examples of the class {labels[i % 4]} (request {i})."},
            ],
            json_schema=samples_schema([labels[i % 4]], 4),
            seed=i,
            max_new_tokens=256,
        )
        for i in range(n)
    ]


def run_round(url: str, n: int, concurrency: int, round_name: str) -> dict:
    from hf_activekd.teachers import TGITeacher

    teacher = TGITeacher(url, max_concurrency=concurrency, timeout_s=30.0)
    requests = make_requests(n, round_name)
    start, cpu_start = time.perf_counter(), time.process_time()
    responses = teacher.generate(requests, progress=False)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    failed = sum(r.error is not None for r in responses)
    faults: dict[str, int] = {}
    for r in responses:
        for k, v in r.faults.items():
            faults[k] = faults.get(k, 0) + v
    return {
        "n": n,
        "concurrency": concurrency,
        "seconds": elapsed,
        "client_cpu_s": cpu,
        "failed": failed,
        "faults": faults,
        "samples": sum(len(r.samples) for r in responses),
        "requests_per_s": n / elapsed,
    }


def versions() -> dict:
    out = {}
    for name in ("huggingface_hub", "httpx2", "transformers", "torch", "tqdm"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "unknown")
        except ImportError:
            out[name] = None
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=128, help="Requests per round (default 128).")
    parser.add_argument("--concurrency", type=int, default=16, help="Max requests in flight, C (default 16).")
    parser.add_argument("--latency", type=float, default=0.2, help="Server latency per request, L seconds (0.2).")
    parser.add_argument("--repeats", type=int, default=5, help="Concurrent rounds to time (default 5).")
    parser.add_argument("--sequential-n", type=int, default=None, help="Requests of the sequential round (default n).")
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "teacher_throughput.json"), help="Results JSON."
    )
    args = parser.parse_args(argv)

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_serve, args=(args.latency, queue, stop), daemon=True)
    process.start()
    url = queue.get(timeout=120)
    try:
        run_round(url, min(args.concurrency, args.n), args.concurrency, "warmup")  # imports, connections
        rounds = [run_round(url, args.n, args.concurrency, f"c{i}") for i in range(args.repeats)]
        seq_n = args.sequential_n or args.n
        sequential = run_round(url, seq_n, 1, "seq")
    finally:
        stop.set()
        server_stats = queue.get(timeout=30)
        process.join(timeout=30)

    bound = math.ceil(args.n / args.concurrency) * args.latency
    times = [r["seconds"] for r in rounds]
    median = statistics.median(times)
    seq_bound = seq_n * args.latency
    seq_per_request = sequential["seconds"] / seq_n
    seq_for_n = seq_per_request * args.n  # equals the measured time when --sequential-n is n
    result = {
        "benchmark": "teacher_throughput",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "setup": {
            "n": args.n,
            "concurrency": args.concurrency,
            "latency_s": args.latency,
            "repeats": args.repeats,
            "server": "hf_activekd.server.TeacherServer + ScriptedBackend(latency_s=L), separate process, 127.0.0.1",
            "client": "hf_activekd.teachers.TGITeacher (huggingface_hub.AsyncInferenceClient.chat_completion)",
        },
        "bound_s": bound,
        "concurrent": {
            "seconds": times,
            "median_s": median,
            "best_s": min(times),
            "ratio_bound_over_achieved_median": bound / median,
            "ratio_bound_over_achieved_best": bound / min(times),
            "requests_per_s_median": args.n / median,
            "client_cpu_s": [r["client_cpu_s"] for r in rounds],
            "failed": sum(r["failed"] for r in rounds),
            "faults": [r["faults"] for r in rounds],
        },
        "sequential": {
            "n": seq_n,
            "seconds": sequential["seconds"],
            "bound_s": seq_bound,
            "ratio_bound_over_achieved": seq_bound / sequential["seconds"],
            "seconds_for_n": seq_for_n,
            "extrapolated": seq_n != args.n,
            "failed": sequential["failed"],
        },
        "speedup_concurrent_vs_sequential": seq_for_n / median,
        "goal_ratio": 0.9,
        "goal_met": bound / median >= 0.9,
        "server_stats": server_stats,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15_min_before": load_before,
            "load_average_1_5_15_min_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "note": "the machine is shared: other processes running at the same time slow both client and server",
            "python": sys.version.split()[0],
            "versions": versions(),
        },
    }

    print(f"Teacher round throughput: n={args.n}, C={args.concurrency}, L={args.latency * 1000:.0f} ms")
    rows = [
        (f"concurrent C={args.concurrency} (median)", median, bound),
        (f"concurrent (best of {args.repeats})", min(times), bound),
        (f"sequential C=1 (n={seq_n})", sequential["seconds"], seq_bound),
    ]
    print(f"{'client':<28}{'round time (s)':>16}{'bound (s)':>12}{'bound/achieved':>16}")
    for name, seconds, row_bound in rows:
        print(f"{name:<28}{seconds:>16.3f}{row_bound:>12.3f}{row_bound / seconds:>16.3f}")
    print(
        f"speed-up over sequential: {seq_for_n / median:.1f}x"
        + (" (sequential extrapolated from its per-request time)" if seq_n != args.n else "")
        + f"; goal bound/achieved >= 0.9: {'met' if result['goal_met'] else 'NOT met'}"
    )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Results written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

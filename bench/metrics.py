"""Cost of the RPC metrics: the same grpc.aio echo server with the runtime's error interceptor alone
(the same-run baseline) and with the metrics interceptor in front of it, and the cost of one scrape.

    .venv/bin/python -m bench.metrics [--quick] [--concurrency 20] [--seconds 5] [--rounds 3]

Client and server share this one process (so CPU per call is both sides together, and the
difference between the rows is what the metrics add); variants alternate round by round and the
median round is reported. Prints a table and writes bench/results/metrics.json.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import grpc
from google.protobuf import wrappers_pb2
from prometheus_client import REGISTRY, generate_latest

from bench import results
from services.runtime import cli
from services.runtime.interceptors import ErrorInterceptor
from services.runtime.metrics import MetricsInterceptor
from tests.runtime.echo_service import SERVICE, EchoConfig, EchoService

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {"errors only (baseline)": lambda: [ErrorInterceptor()],
            "metrics + errors": lambda: [MetricsInterceptor(), ErrorInterceptor()]}


async def _round(interceptors: list, concurrency: int, seconds: float) -> dict:
    server = grpc.aio.server(interceptors=interceptors)
    EchoService(EchoConfig()).register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    latencies: list[float] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(f"/{SERVICE}/Echo", request_serializer=wrappers_pb2.StringValue.SerializeToString,
                                       response_deserializer=wrappers_pb2.StringValue.FromString)
            request = wrappers_pb2.StringValue(value="hello")
            await echo(request)  # connected before the clock starts
            stop = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    await echo(request)
                    latencies.append(time.perf_counter() - t0)

            cpu0, t0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await server.stop(None)
    latencies.sort()
    return {"calls_per_s": len(latencies) / elapsed, "cpu_us_per_call": cpu / len(latencies) * 1e6,
            "p50_ms": latencies[len(latencies) // 2] * 1e3, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


def _scrape_cost(samples: int = 50) -> dict:
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        body = generate_latest(REGISTRY)
        times.append(time.perf_counter() - t0)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {"series": series, "bytes": len(body), "ms": statistics.median(times) * 1e3}


async def run(concurrency: int, seconds: float, rounds: int) -> dict:
    measured: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, interceptors in VARIANTS.items():
            measured[name].append(await _round(interceptors(), concurrency, seconds))
    median = {name: sorted(rs, key=lambda r: r["calls_per_s"])[len(rs) // 2] for name, rs in measured.items()}
    return {"concurrency": concurrency, "seconds": seconds, "rounds": rounds, "median_round": median,
            "all_rounds": measured, "scrape": _scrape_cost()}


def main() -> int:
    parser = cli.CommandParser(prog="python -m bench.metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=cli.finite_float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seconds, rounds = (2.0, 1) if args.quick else (args.seconds, args.rounds)
    result = asyncio.run(run(args.concurrency, seconds, rounds))
    base = result["median_round"]["errors only (baseline)"]
    print(f"\nunary echo, {args.concurrency} concurrent callers, client and server in one process, "
          f"median of {rounds} round(s) of {seconds:.0f} s")
    print(f"{'variant':<24} {'calls/s':>9} {'vs base':>8} {'CPU µs/call':>12} {'p50 ms':>7} {'p99 ms':>7}")
    for name, r in result["median_round"].items():
        print(f"{name:<24} {r['calls_per_s']:>9.0f} {r['calls_per_s'] / base['calls_per_s']:>8.2f} "
              f"{r['cpu_us_per_call']:>12.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}")
    s = result["scrape"]
    print(f"one scrape of this process: {s['series']} series, {s['bytes']} bytes, {s['ms']:.2f} ms to render")
    results.save("metrics", result)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.metrics"))

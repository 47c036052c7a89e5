"""Energy service benchmark: sensor readings/s end to end through the Envoy gateway (StreamReadings and
WriteReadings with 5,000-reading batches) beside direct line-protocol POSTs of the same kind of points
(5,000-line batches) to the same InfluxDB in the same run; GetDashboard latency through the gateway.

    .venv/bin/python -m bench.energy [--quick]

Starts its own PostgreSQL 15, Redis, InfluxDB 1.x, the session+energy services as one separate process
(`python -m services.runtime --target session,energy`) and Envoy (deploy/envoy via the test harness).
Every run checks that InfluxDB holds exactly the points each phase wrote. Prints a table and writes
bench/results/energy.json.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import grpc

from banhammer.energy.v1 import building_pb2, building_pb2_grpc, dashboard_pb2, dashboard_pb2_grpc, sensor_pb2
from bench import results as saved
from bench.ingest import start_postgres
from services.runtime import cli
from services.energy.influx.client import InfluxClient
from services.energy.readings import encode_batch
from services.energy.models import Reading
from tests.harness import check_health
from banhammer.session.v1 import session_pb2, session_pb2_grpc
from tests.harness.envoy import EnvoyGateway, envoy_binary
from tests.harness.processes import ManagedProcess, free_port, wait_until
from tests.harness.stores import InfluxServer

REPO = Path(__file__).resolve().parents[1]
BATCH = 5000
INFLUX_DB = "energy_bench"
TYPES = ("power", "temperature", "humidity", "illuminance")


def start_redis(workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", str(workdir)], workdir / "redis.log").start()
    import socket

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_until(ready, 20, "redis PING", proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_services(workdir: Path, dsn: str, redis_url: str, influx_url: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port),
           "LOG_LEVEL": "WARNING", "OTEL_SDK_DISABLED": "true", "REDIS_URL": redis_url,
           "SESSION_SERVICE_ADDR": f"127.0.0.1:{port}", "ENERGY_DATABASE_URL": dsn, "INFLUXDB_URL": influx_url,
           "INFLUXDB_DATABASE": INFLUX_DB, "ENERGY_AUTO_MIGRATE": "true", "ENERGY_SPOOL_DIR": str(workdir / "spool"),
           "ENERGY_ALERT_INTERVAL_SECONDS": "0",
           "GATEWAY_RATE_LIMITS": "service=1000000/1,energy_user=1000000/1"}
    proc = ManagedProcess("energy", [sys.executable, "-m", "services.runtime", "--target", "session,energy"],
                          workdir / "energy.log", env=env, cwd=REPO).start()
    addr = f"127.0.0.1:{port}"
    wait_until(lambda: check_health(addr, "") == "SERVING", 60, "session+energy SERVING", proc)
    return proc, addr


class Points:
    """Deterministic readings: building ids from ``first_building``, unique timestamps."""

    def __init__(self, first_building: int, base_ns: int) -> None:
        self.first_building, self.base_ns = first_building, base_ns

    def reading(self, i: int) -> Reading:
        return Reading(self.first_building + i % 50, TYPES[i % 4], str(i % 10), f"room_{i % 40}",
                       20.0 + (i % 1000) / 10, "kW" if i % 4 == 0 else "unit", "normal", self.base_ns + i * 1000)

    def proto_batch(self, start: int, n: int) -> list[sensor_pb2.SensorReading]:
        out = []
        for i in range(start, start + n):
            r = self.reading(i)
            t = sensor_pb2.SensorReading(building_id=r.building_id, sensor_type=r.sensor_type, floor=r.floor,
                                         room=r.room, value=r.value, unit=r.unit, status=r.status)
            t.time.FromNanoseconds(r.time_ns)
            out.append(t)
        return out


    def series_batch(self, start: int, n: int) -> list[sensor_pb2.SeriesReadings]:
        """The same points as ``proto_batch``, columnar: one SeriesReadings per series in the batch."""
        groups: dict[tuple, sensor_pb2.SeriesReadings] = {}
        for i in range(start, start + n):
            r = self.reading(i)
            key = (r.building_id, r.sensor_type, r.floor, r.room, r.unit, r.status)
            s = groups.get(key)
            if s is None:
                s = groups[key] = sensor_pb2.SeriesReadings(building_id=r.building_id, sensor_type=r.sensor_type,
                                                            floor=r.floor, room=r.room, unit=r.unit, status=r.status)
            s.values.append(r.value)
            s.times_unix_nano.append(r.time_ns)
        return list(groups.values())


async def influx_count(influx: InfluxClient, first_building: int) -> int:
    buildings = " OR ".join(f"building_id = '{b}'" for b in range(first_building, first_building + 50))
    series = await influx.query(f"SELECT count(value) FROM {influx.qualified_measurement} WHERE {buildings}")
    return sum(int(r["count"]) for s in series for r in s["rows"])


async def bench_direct(influx: InfluxClient, points: Points, total: int, concurrency: int) -> dict:
    payloads = [encode_batch([points.reading(i) for i in range(s, min(s + BATCH, total))]) for s in range(0, total, BATCH)]
    queue = list(reversed(payloads))
    start = time.perf_counter()

    async def worker():
        while queue:
            await influx.write(queue.pop())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"points": total, "seconds": elapsed, "points_per_s": total / elapsed}


async def bench_stream(addr: str, md: tuple, points: Points, total: int, streams: int, window: int,
                       columnar: bool = False) -> dict:
    def request(k: int, s: int) -> sensor_pb2.StreamReadingsRequest:
        n = min(BATCH, total - s)
        if columnar:
            return sensor_pb2.StreamReadingsRequest(sequence=k, series=points.series_batch(s, n))
        return sensor_pb2.StreamReadingsRequest(sequence=k, readings=points.proto_batch(s, n))

    raw = [request(k, s).SerializeToString() for k, s in enumerate(range(0, total, BATCH))]
    shards = [raw[i::streams] for i in range(streams)]
    async with grpc.aio.insecure_channel(addr, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        call = ch.stream_stream("/banhammer.energy.v1.SensorService/StreamReadings",
                                request_serializer=lambda b: b,
                                response_deserializer=sensor_pb2.StreamReadingsResponse.FromString)
        accepted = 0

        async def one(shard: list[bytes]) -> None:
            nonlocal accepted
            credits = asyncio.Semaphore(window)  # batches in flight per stream

            async def requests():
                for body in shard:
                    await credits.acquire()
                    yield body

            async for ack in call(requests(), metadata=md):
                assert not ack.error.code, ack.error.message
                accepted += ack.accepted_count
                credits.release()

        start = time.perf_counter()
        await asyncio.gather(*(one(s) for s in shards))
        elapsed = time.perf_counter() - start
    assert accepted == total, (accepted, total)
    return {"points": total, "seconds": elapsed, "points_per_s": total / elapsed, "streams": streams, "window": window}


async def bench_unary(addr: str, md: tuple, points: Points, total: int, concurrency: int) -> dict:
    raw = [sensor_pb2.WriteReadingsRequest(readings=points.proto_batch(s, min(BATCH, total - s))).SerializeToString()
           for s in range(0, total, BATCH)]
    queue = list(reversed(raw))
    async with grpc.aio.insecure_channel(addr, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        call = ch.unary_unary("/banhammer.energy.v1.SensorService/WriteReadings", request_serializer=lambda b: b,
                              response_deserializer=sensor_pb2.WriteReadingsResponse.FromString)

        async def worker():
            while queue:
                await call(queue.pop(), metadata=md)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"points": total, "seconds": elapsed, "points_per_s": total / elapsed, "concurrency": concurrency}


async def bench_dashboard(addr: str, admin_md: tuple, md: tuple, calls: int, concurrency: int) -> dict:
    """An energy admin (``admin_md``) creates the buildings; an energy user (``md``) reads."""
    async with grpc.aio.insecure_channel(addr) as ch:
        buildings = building_pb2_grpc.BuildingServiceStub(ch)
        ids = [(await buildings.CreateBuilding(building_pb2.CreateBuildingRequest(building=building_pb2.Building(
            name=f"Bench {i}", address="Seoul")), metadata=admin_md)).building.building_id for i in range(20)]
        dash = dashboard_pb2_grpc.DashboardServiceStub(ch)
        for b in ids:  # warm the channel and the cache once
            await dash.GetDashboard(dashboard_pb2.GetDashboardRequest(building_id=b), metadata=md)
        latencies: list[float] = []
        remaining = calls

        async def worker():
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                await dash.GetDashboard(dashboard_pb2.GetDashboardRequest(building_id=random.choice(ids)), metadata=md)
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    return {"calls": len(latencies), "concurrency": concurrency, "calls_per_s": len(latencies) / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": latencies[-1] * 1000}


async def run(args) -> dict:
    total = 100_000 if args.quick else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="bench-energy-"))
    procs: list = []
    try:
        (work / "pg").mkdir()
        pg, dsn = start_postgres(work / "pg")
        procs.append(pg)
        redis, redis_url = start_redis(work)
        procs.append(redis)
        influxd = InfluxServer(work / "influx")
        influxd.start()
        procs.append(influxd)
        svc, addr = start_services(work, dsn, redis_url, influxd.url)
        procs.append(svc)
        via = "direct to the service port (envoy not installed)"
        target, md, admin_md, reader_md = addr, (), (), ()
        if envoy_binary():
            # As deployed: authentication on, an IoT gateway writing with its "service" credentials,
            # buildings made by an energy admin and the dashboard read by a signed-in energy user.
            gw = EnvoyGateway(work / "envoy", {t: addr for t in ("ingest", "query", "session", "energy")}).start()
            procs.append(gw)
            async with grpc.aio.insecure_channel(addr) as ch:
                sessions = session_pb2_grpc.SessionServiceStub(ch)
                token = (await sessions.CreateSession(
                    session_pb2.CreateSessionRequest(subject="bench-iot-gateway", role="service"))).token
                admin, reader = [(await sessions.CreateSession(session_pb2.CreateSessionRequest(
                    subject=f"user:{i}", role=role))).token for i, role in ((1, "energy_admin"), (2, "energy_user"))]
            target, md = gw.addr, (("authorization", f"Bearer {token}"),)
            admin_md, reader_md = (("authorization", f"Bearer {admin}"),), (("authorization", f"Bearer {reader}"),)
            via = "through Envoy with authentication on (deploy/envoy/render.py, local profile)"
        influx = InfluxClient(influxd.url, INFLUX_DB)
        await influx.setup()
        base = time.time_ns() - 3600 * 10**9
        results = {"via": via, "batch": BATCH}
        results["direct_post"] = await bench_direct(influx, Points(100_001, base), total, 4)
        results["stream"] = await bench_stream(target, md, Points(200_001, base), total, streams=4, window=2)
        results["unary"] = await bench_unary(target, md, Points(300_001, base), total // 2, concurrency=4)
        results["stream_columnar"] = await bench_stream(target, md, Points(400_001, base), total, streams=4, window=2,
                                                        columnar=True)
        for name, first, n in (("direct_post", 100_001, total), ("stream", 200_001, total), ("unary", 300_001, total // 2),
                               ("stream_columnar", 400_001, total)):
            stored = await influx_count(influx, first)
            assert stored == n, f"{name}: InfluxDB holds {stored} of {n} points"
            results[name]["verified_in_influxdb"] = stored
        results["stream_vs_direct"] = results["stream"]["points_per_s"] / results["direct_post"]["points_per_s"]
        results["unary_vs_direct"] = results["unary"]["points_per_s"] / results["direct_post"]["points_per_s"]
        results["stream_columnar_vs_direct"] = (results["stream_columnar"]["points_per_s"]
                                                / results["direct_post"]["points_per_s"])
        results["dashboard"] = await bench_dashboard(target, admin_md, reader_md, 500 if args.quick else 3000, 8)
        await influx.close()
        return results
    finally:
        for p in reversed(procs):
            p.stop()


def main() -> None:
    parser = cli.CommandParser(prog="python -m bench.energy")
    parser.add_argument("--quick", action="store_true", help="100k points, 500 dashboard calls")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "quick": args.quick}
    print(f"\nenergy benchmark ({results['via']}, {BATCH}-reading batches)")
    print(f"{'phase':<34}{'points':>10}{'seconds':>10}{'points/s':>12}")
    for key, label in (("direct_post", "direct line-protocol POST (x4)"), ("stream", "StreamReadings (4 streams)"),
                       ("unary", "WriteReadings (x4)"), ("stream_columnar", "StreamReadings, columnar series")):
        r = results[key]
        print(f"{label:<34}{r['points']:>10}{r['seconds']:>10.2f}{r['points_per_s']:>12,.0f}")
    print(f"ratio stream/direct: {results['stream_vs_direct']:.1%}   unary/direct: {results['unary_vs_direct']:.1%}"
          f"   columnar stream/direct: {results['stream_columnar_vs_direct']:.1%}   (target >= 50%)")
    d = results["dashboard"]
    print(f"GetDashboard: {d['calls']} calls, p50 {d['p50_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms, "
          f"max {d['max_ms']:.1f} ms (target p99 < 50 ms)")
    saved.save("energy", results)


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.energy"))

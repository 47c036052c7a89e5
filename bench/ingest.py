"""Ingest service benchmark: unary, batch and streaming throughput to committed rows, each beside
direct asyncpg COPY of the same rows in the same run; the seed's 1000 sequential RecordAction calls;
the service's RSS after actions from 10k .. 1M distinct players.

    .venv/bin/python -m bench.ingest [--quick]

Starts its own PostgreSQL 15 (plain: no TimescaleDB on this machine, so the writer also maintains
the rollup tables) and the ingest service as a separate process (its RSS is read from /proc).
Unary calls are measured direct to the service port and through Envoy (auth off; when an Envoy
binary is found), from one client process and from two. Prints a table and writes
bench/results/ingest.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import grpc

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from bench import results
from services.runtime import cli
from services.ingest.store import run_migrations

from . import write_costs
from tests.harness.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TYPES = ("kill", "loot", "move", "reward_collection")


# --- servers ---------------------------------------------------------------------------------
def _as_postgres(argv: list[str]) -> list[str]:
    if os.getuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


# The seed's own server tuning (its scaling guide), scaled to this machine; the same server serves
# the COPY baseline and the service, so ratios stay fair. Durability is untouched: fsync and
# synchronous_commit stay on.
TUNING = [f"-c{k}={v}" for k, v in {
    "shared_buffers": "512MB", "wal_buffers": "16MB", "max_wal_size": "4GB",
    "checkpoint_completion_target": "0.9", "random_page_cost": "1.1"}.items()]


def start_postgres(workdir: Path) -> tuple[ManagedProcess, str]:
    data = workdir / "pgdata"
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        d = workdir
        while str(d) != "/":
            os.chmod(d, os.stat(d).st_mode | 0o001)
            d = d.parent
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    proc = ManagedProcess("postgres", _as_postgres([
        str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir), "-c", "listen_addresses=127.0.0.1",
        "-c", "max_connections=50", *TUNING]), workdir / "postgres.log").start()
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def ready() -> bool:
        return subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL).returncode == 0

    wait_until(ready, 30, "postgres ready", proc)
    return proc, dsn


def start_ingest(workdir: Path, dsn: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port),
           "TIMESCALEDB_URL": dsn, "LOG_LEVEL": "WARNING", "OTEL_SDK_DISABLED": "true",
           "MALLOC_ARENA_MAX": "2"}  # as the Dockerfile sets it
    proc = ManagedProcess("ingest", [sys.executable, "-m", "services.ingest"], workdir / "ingest.log",
                          env=env, cwd=REPO).start()
    addr = f"127.0.0.1:{port}"
    from tests.harness import check_health

    wait_until(lambda: check_health(addr, "banhammer.ingest.v1.IngestService") == "SERVING", 60, "ingest SERVING", proc)
    return proc, addr


def start_envoy(workdir: Path, ingest_addr: str):
    """Envoy in front of the service (auth off: no session service here), or None without Envoy."""
    from tests.harness.envoy import EnvoyGateway, envoy_binary

    if envoy_binary() is None:
        return None
    return EnvoyGateway(workdir / "envoy", {"ingest": ingest_addr}, auth=False).start()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class LagSampler:
    """Samples the age of the oldest queued batch of every fold queue every 100 ms while a load
    runs: how far the aggregates trail the acknowledged writes (0 when a queue is empty)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples: dict[str, list[float]] = {}

    async def __aenter__(self) -> "LagSampler":
        self.conn = await asyncpg.connect(self.dsn)
        queues = [r["tablename"] for r in await self.conn.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'ingest\\_pending\\_%'")]
        self.sql = " UNION ALL ".join(
            f"SELECT '{q.removeprefix('ingest_pending_')}' AS family, "
            f"coalesce(extract(epoch FROM now() - min(enqueued_at)), 0)::float8 AS age FROM {q}" for q in queues)
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while self.sql:
            for r in await self.conn.fetch(self.sql):
                self.samples.setdefault(r["family"], []).append(r["age"])
            await asyncio.sleep(0.1)

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.conn.close()

    def summary(self) -> dict:
        def pct(xs: list[float], q: float) -> float:
            xs = sorted(xs)
            return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3)

        return {f: {"p50": pct(xs, 0.5), "p99": pct(xs, 0.99), "max": round(max(xs), 3), "samples": len(xs)}
                for f, xs in self.samples.items() if xs}


# --- workload --------------------------------------------------------------------------------
class Rows:
    """Deterministic actions: player i % players, event ids unique per run and prefix."""

    def __init__(self, prefix: str, players: int, event_ids: bool = True) -> None:
        self.prefix, self.players, self.event_ids = prefix, players, event_ids

    def action(self, i: int) -> common_pb2.PlayerAction:
        return common_pb2.PlayerAction(player_id=f"{self.prefix}-p{i % self.players}", action_type=TYPES[i % 4],
                                       value=float(i % 97), event_id=f"e{i}" if self.event_ids else "")

    def batch(self, start: int, n: int) -> list[common_pb2.PlayerAction]:
        return [self.action(i) for i in range(start, start + n)]

    def columns(self, start: int, n: int) -> ingest_pb2.ActionColumns:
        """The same actions as ``batch``, as packed columns (player ids deduplicated per batch)."""
        index: dict[str, int] = {}
        player = [index.setdefault(f"{self.prefix}-p{i % self.players}", len(index)) for i in range(start, start + n)]
        return ingest_pb2.ActionColumns(
            players=list(index), player=player, action_types=list(TYPES),
            action_type=[i % 4 for i in range(start, start + n)], value=[float(i % 97) for i in range(start, start + n)],
            event_id=[f"e{i}" for i in range(start, start + n)] if self.event_ids else [])

    def records(self, start: int, n: int, now) -> list[tuple]:
        return [(now, f"{self.prefix}-p{i % self.players}", TYPES[i % 4], float(i % 97), None, f"e{i}")
                for i in range(start, start + n)]


async def count_rows(dsn: str, prefix: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM player_actions_ts WHERE player_id LIKE $1", prefix + "-%")
    finally:
        await conn.close()


async def bench_copy(dsn: str, total: int, batch: int, prefix: str) -> dict:
    """The ceiling: asyncpg COPY of the same rows straight into player_actions_ts (2 connections)."""
    from datetime import datetime, timezone

    rows = Rows(prefix, 100_000)
    now = datetime.now(timezone.utc)
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=2)
    cols = ("time", "player_id", "action_type", "value", "metadata", "event_id")
    chunks = [rows.records(s, min(batch, total - s), now) for s in range(0, total, batch)]
    started = time.perf_counter()

    async def copy(chunk):
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("player_actions_ts", records=chunk, columns=cols)

    queue = list(chunks)

    async def worker():
        while queue:
            await copy(queue.pop())

    await asyncio.gather(worker(), worker())
    elapsed = time.perf_counter() - started
    await pool.close()
    return {"rows": total, "seconds": elapsed, "rows_per_s": total / elapsed}


async def bench_unary(addr: str, total: int, concurrency: int, prefix: str) -> dict:
    rows = Rows(prefix, 100_000)
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        requests = [ingest_pb2.RecordActionRequest(action=rows.action(i)) for i in range(total)]
        it = iter(requests)
        started = time.perf_counter()

        async def worker():
            for req in it:
                await stub.RecordAction(req)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"calls": total, "concurrency": concurrency, "seconds": elapsed, "rows_per_s": total / elapsed}


def _noop_call(channel):
    """The cheapest RPC the service answers (grpc.health.v1 Check, no database): the transport floor.
    The header names the service for the gateway's router; a direct call ignores it."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    req = health_pb2.HealthCheckRequest(service="banhammer.ingest.v1.IngestService")
    meta = (("x-banhammer-service", "ingest"),)
    return lambda: stub.Check(req, metadata=meta)


def _unary_worker(addr: str, prefix: str, start: int, n: int, concurrency: int, barrier, results,
                  noop: bool = False) -> None:
    async def go() -> float:
        rows = Rows(prefix, 100_000)
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            await channel.channel_ready()
            requests = iter([ingest_pb2.RecordActionRequest(action=rows.action(i)) for i in range(start, start + n)])
            check = _noop_call(channel)
            barrier.wait()
            started = time.perf_counter()

            async def worker():
                for req in requests:
                    await (check() if noop else stub.RecordAction(req))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

    results.put(asyncio.run(go()))


def bench_unary_processes(addr: str, total: int, processes: int, concurrency: int, prefix: str,
                          noop: bool = False) -> dict:
    """Unary calls from several client processes (one Python client cannot saturate the service:
    it spends as much CPU per call as the server); throughput = calls / slowest process's time."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    per = total // processes
    procs = [ctx.Process(target=_unary_worker, args=(addr, prefix, i * per, per, concurrency, barrier, results, noop))
             for i in range(processes)]
    for p in procs:
        p.start()
    elapsed = max(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    calls = per * processes
    return {"calls": calls, "processes": processes, "concurrency": concurrency * processes, "seconds": elapsed,
            "rows_per_s": calls / elapsed}


async def bench_batches(addr: str, total: int, batch: int, concurrency: int, prefix: str) -> dict:
    rows = Rows(prefix, 100_000)
    requests = [ingest_pb2.RecordActionsRequest(actions=rows.batch(s, min(batch, total - s)))
                for s in range(0, total, batch)]
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        it = iter(requests)
        started = time.perf_counter()

        async def worker():
            for req in it:
                while True:
                    try:
                        await stub.RecordActions(req)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                            raise
                        await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"rows": total, "batch": batch, "concurrency": concurrency, "seconds": elapsed, "rows_per_s": total / elapsed}


async def stream(addr: str, rows: Rows, start: int, total: int, batch: int, streams: int = 2,
                 producer: str | None = None, columns: bool = False) -> float:
    """Send ``total`` actions over ``streams`` streams; returns seconds until every batch is acked.
    With ``producer``, each stream is an idempotent producer (key ``<producer>-<stream>``, the batch's
    first action index as its sequence), as the SDK sends."""
    per = [(s, min(batch, start + total - s)) for s in range(start, start + total, batch)]
    shards = [per[i::streams] for i in range(streams)]
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        def build(index, shard):  # the client's encoding is not the service's work: built before the clock
            key = ingest_pb2.ProducerKey(producer_id=f"{producer}-{index}") if producer else None
            return {s: ingest_pb2.StreamActionsRequest(sequence=s, producer=key, **(
                {"columns": rows.columns(s, n)} if columns else {"actions": rows.batch(s, n)})) for s, n in shard}

        built = [build(i, s) for i, s in enumerate(shards)]
        started = time.perf_counter()

        async def one(pending):
            while pending:
                async for ack in stub.StreamActions(iter(list(pending.values()))):
                    if not ack.HasField("error"):
                        pending.pop(ack.sequence, None)

        await asyncio.gather(*(one(p) for p in built))
        return time.perf_counter() - started


async def bench_seed(addr: str, noop: bool = False) -> dict:
    """The seed's performance test: 1000 sequential calls with its exact body (``noop``: the same
    loop of no-op health checks, the floor any RPC through this path pays)."""
    body = common_pb2.PlayerAction(player_id="test_player_1", action_type="reward_collection", value=100.0)
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        check = _noop_call(channel)

        def call():
            return check() if noop else stub.RecordAction(ingest_pb2.RecordActionRequest(action=body))

        await call()  # connect first
        started = time.perf_counter()
        for _ in range(1000):
            await call()
        return {"calls": 1000, "seconds": time.perf_counter() - started}


async def bench_seed_json(url: str, path: str = "/api/ts/action", body: dict | None = None) -> dict:
    """The seed's test as written: 1000 sequential ``POST /api/ts/action`` with its JSON body, one
    keep-alive HTTP/1.1 connection (``path``/``body``: the same loop against another JSON route)."""
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(url)
    payload = json.dumps(body if body is not None else
                         {"player_id": "test_player_1", "action_type": "reward_collection", "value": 100.0})
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)

    def call() -> None:
        conn.request("POST", path, payload, {"content-type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"POST {path}: HTTP {resp.status} {data[:200]!r}")

    def loop() -> float:
        call()  # connect first
        started = time.perf_counter()
        for _ in range(1000):
            call()
        return time.perf_counter() - started

    try:
        return {"calls": 1000, "seconds": await asyncio.to_thread(loop)}
    finally:
        conn.close()


async def bench_store_floor(dsn: str) -> dict:
    """PostgreSQL alone, one connection, 1000 sequential: a round trip (``SELECT 1``), and the write
    path's one-row transaction as the service runs it (one statement, its commit, fsync on)."""
    from datetime import datetime, timezone

    from services.ingest.actions import Row
    from services.ingest.store import writes

    conn = await asyncpg.connect(dsn)
    try:
        queues = [r["tablename"] for r in await conn.fetch(writes.FIND_QUEUES)]
        statements = writes.Statements.of(queues)
        started = time.perf_counter()
        for _ in range(1000):
            await conn.fetchval("SELECT 1")
        round_trip = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(1000):
            row = Row(datetime.now(timezone.utc), "floor-p1", "reward_collection", 100.0, None, None)
            await writes.write_group(conn, [writes.Batch([row])], statements=statements)
        write = time.perf_counter() - started
    finally:
        await conn.close()
    return {"select_1_seconds": round(round_trip, 3), "one_row_write_seconds": round(write, 3)}


FOLD_MAX_BATCHES = 1_000  # the service's INGEST_FOLD_MAX_BATCHES default


async def bench_backlog(dsn: str, n: int, group: int = 5_000) -> dict:
    """A backlog of ``n`` actions (written by the real write path with no materializer running, as
    after an outage), then folded to empty: rows/s per family and overall (families one after the
    other on one connection; the service runs them concurrently, so this is a lower bound)."""
    from datetime import datetime, timezone

    from services.ingest.actions import Row
    from services.ingest.store import fold, writes

    conn = await asyncpg.connect(dsn)
    try:
        await fold.drain(conn)
        statements = writes.Statements.of([r["tablename"] for r in await conn.fetch(writes.FIND_QUEUES)])
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        for s in range(0, n, group):
            rows = [Row(now, f"backlog-p{i % 1_000_000}", TYPES[i % 4], float(i % 97), None, None)
                    for i in range(s, min(n, s + group))]
            await writes.write_group(conn, [writes.Batch(rows)], statements=statements)
            if s and s % (n // 10) < group:
                print(f"  backlog: {s:,} of {n:,} written", file=sys.stderr, flush=True)
        written = time.perf_counter() - started
        hll = await fold.has_hll(conn)
        per_family = {}
        for family in fold.FAMILIES:
            started = time.perf_counter()
            rows = 0
            while (done := await fold.fold(conn, family, max_batches=FOLD_MAX_BATCHES, hll=hll)).batches:
                rows += done.rows
            per_family[family] = {"rows": rows, "seconds": round(time.perf_counter() - started, 2)}
            print(f"  backlog: {family} folded in {per_family[family]['seconds']} s", file=sys.stderr, flush=True)
    finally:
        await conn.close()
    total = sum(f["seconds"] for f in per_family.values())
    return {"actions": n, "write_seconds": round(written, 2), "folds": per_family,
            "fold_seconds": round(total, 2), "folded_per_s": round(n / total)}


def python_cost(rounds: int = 20) -> dict:
    """The service's Python work per action before the database, in this process: decoding a
    1,000-action StreamActionsRequest from the wire and validating it, as actions and as columns."""
    from services.ingest.actions import TimeWindow, validate, validate_columns
    from services.ingest.servicer import _batch

    class Validator:  # what ``_batch`` calls on the service
        window = TimeWindow.of_seconds(86_400, 300)

        def validate(self, items, prefix="actions", indexed=True):
            return validate(items, self.window, prefix=prefix, indexed=indexed)

        def validate_columns(self, columns):
            return validate_columns(columns, self.window)

    rows = Rows("py", 100_000, event_ids=False)
    out = {}
    for name, req in (("actions", ingest_pb2.StreamActionsRequest(actions=rows.batch(0, 1_000))),
                      ("columns", ingest_pb2.StreamActionsRequest(columns=rows.columns(0, 1_000)))):
        wire = req.SerializeToString()
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            _batch(ingest_pb2.StreamActionsRequest.FromString(wire), Validator())
            best = min(best, time.perf_counter() - started)
        out[name] = round(best * 1e6 / 1_000, 2)
    return out


def per_call(res: dict, floors: dict) -> dict:
    """Where the milliseconds of one sequential RecordAction go (ms per call, from the same run)."""
    ms = {  # seconds per 1000 calls == ms per call
        "noop_direct": floors["direct"]["sequential_1000_seconds"],
        "store_write": floors["store"]["one_row_write_seconds"],
        "record_direct": res["seed_1000_sequential"]["seconds"],
    }
    out = {"client + gRPC transport (no-op RPC, direct)": ms["noop_direct"],
           "PostgreSQL: one-statement write + commit": ms["store_write"],
           "servicer + writer hand-off (the rest of a direct call)":
               ms["record_direct"] - ms["noop_direct"] - ms["store_write"]}
    if "via Envoy" in floors:
        envoy_noop = floors["via Envoy"]["sequential_1000_seconds"]
        out["Envoy hop (no-op via Envoy - direct)"] = envoy_noop - ms["noop_direct"]
        if "seed_1000_json_envoy" in res and "json_noop_envoy" in floors:
            out["JSON transcoding + HTTP/1.1 (JSON no-op - gRPC no-op, via Envoy)"] = \
                floors["json_noop_envoy"]["seconds"] - envoy_noop
    return {k: round(v, 3) for k, v in out.items()}


async def bench_floor(addr: str, unary_n: int, label: str) -> dict:
    """What a no-op RPC costs on this path: 1000 sequential calls, and calls/s from two client
    processes (the same client set-up as the unary rows)."""
    seq = await bench_seed(addr, noop=True)
    par = bench_unary_processes(addr, unary_n, 2, 32, "noop", noop=True)
    return {"path": label, "sequential_1000_seconds": round(seq["seconds"], 3),
            "calls_per_s_2proc": round(par["rows_per_s"])}


async def run(args) -> dict:
    quick = args.quick
    n = 50_000 if quick else 300_000
    unary_n = 5_000 if quick else 30_000
    million = 100_000 if quick else 1_000_000
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    pg, dsn = start_postgres(workdir)
    ingest = envoy = None
    try:
        await run_migrations(dsn, 7)
        ingest, addr = start_ingest(workdir, dsn)
        envoy = start_envoy(workdir, addr)
        out: dict = {"quick": quick, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                     "store": "PostgreSQL 15 (plain: partitions + rollup tables maintained by the writer)",
                     "path": "direct to the service port; *_envoy rows through Envoy (auth off)" if envoy
                     else "direct to the service port (no Envoy binary found)"}
        out["rss_mb_idle"] = rss_mb(ingest.pid)
        res = {}
        for batch in (1_000, 10_000):
            res[f"copy_{batch}"] = await bench_copy(dsn, n, batch, f"copy{batch}")
            secs = await stream(addr, Rows(f"stream{batch}", 100_000), 0, n, batch)
            assert await count_rows(dsn, f"stream{batch}") == n
            res[f"stream_{batch}"] = {"rows": n, "batch": batch, "streams": 2, "seconds": secs, "rows_per_s": n / secs}
        # The target row: idempotent by producer key (no per-action ids), through the gateway when
        # there is one, with the materializer folding behind (its lag sampled meanwhile).
        front = envoy.addr if envoy is not None else addr
        async with LagSampler(dsn) as lag:
            secs = await stream(front, Rows("keyed", 100_000, event_ids=False), 0, n, 1_000, producer="bench")
        assert await count_rows(dsn, "keyed") == n
        res["stream_1000_keyed" + ("_envoy" if envoy is not None else "")] = {
            "rows": n, "batch": 1_000, "streams": 2, "seconds": secs, "rows_per_s": n / secs}
        out["fold_lag_seconds"] = lag.summary()
        secs = await stream(front, Rows("cols", 100_000, event_ids=False), 0, n, 1_000, producer="cols", columns=True)
        assert await count_rows(dsn, "cols") == n
        res["stream_1000_columns" + ("_envoy" if envoy is not None else "")] = {
            "rows": n, "batch": 1_000, "streams": 2, "seconds": secs, "rows_per_s": n / secs}
        out["python_us_per_action"] = python_cost()
        # Denser traffic (1,000 players, many actions each inside a minute): aggregate keys and
        # player-hour rows are updated in place instead of created, as in steady play.
        secs = await stream(addr, Rows("dense", 1_000), 0, n, 1_000)
        assert await count_rows(dsn, "dense") == n
        res["stream_1000_dense"] = {"rows": n, "batch": 1_000, "streams": 2, "players": 1_000, "seconds": secs,
                                    "rows_per_s": n / secs}
        res["batch_1000"] = await bench_batches(addr, n, 1_000, 4, "batch")
        assert await count_rows(dsn, "batch") == n
        res["unary"] = await bench_unary(addr, unary_n, 64, "unary")
        assert await count_rows(dsn, "unary") == unary_n
        res["unary_2proc"] = bench_unary_processes(addr, unary_n, 2, 32, "unary2p")
        assert await count_rows(dsn, "unary2p") == res["unary_2proc"]["calls"]
        res["seed_1000_sequential"] = await bench_seed(addr)
        if envoy is not None:  # the same, through the gateway (JSON-less gRPC route, auth off)
            res["unary_envoy"] = await bench_unary(envoy.addr, unary_n, 64, "unaryenv")
            assert await count_rows(dsn, "unaryenv") == unary_n
            res["unary_envoy_2proc"] = bench_unary_processes(envoy.addr, unary_n, 2, 32, "unaryenv2p")
            assert await count_rows(dsn, "unaryenv2p") == res["unary_envoy_2proc"]["calls"]
            res["seed_1000_sequential_envoy"] = await bench_seed(envoy.addr)
            res["seed_1000_json_envoy"] = await bench_seed_json(envoy.url)
        out["throughput"] = res
        # The floor: the same calls with no work behind them. A target below it is out of reach
        # for any handler on this path and machine.
        out["noop_floor"] = [await bench_floor(addr, unary_n, "direct")]
        floors = {"direct": out["noop_floor"][0], "store": await bench_store_floor(dsn)}
        if envoy is not None:
            out["noop_floor"].append(await bench_floor(envoy.addr, unary_n, "via Envoy"))
            floors["via Envoy"] = out["noop_floor"][-1]
            # The cheapest JSON route (rules from memory): Envoy's transcoding without a store.
            floors["json_noop_envoy"] = await bench_seed_json(envoy.url, "/banhammer.ingest.v1.IngestService/ListRules", {})
        out["store_floor"] = floors["store"]
        out["per_call_ms"] = per_call(res, floors)
        ceiling = res["copy_1000"]["rows_per_s"]
        out["ratios_to_copy_1000"] = {k: round(v["rows_per_s"] / ceiling, 3) for k, v in res.items() if "rows_per_s" in v}
        out["ratio_stream_10000_to_copy_10000"] = round(res["stream_10000"]["rows_per_s"] / res["copy_10000"]["rows_per_s"], 3)

        # RSS: one action per distinct player, checkpoints at 10k, 100k, 1M players.
        rows = Rows("mem", million)
        sent, rss = 0, {}
        for mark in (10_000, 100_000, 1_000_000):
            if mark > million:
                break
            await stream(addr, rows, sent, mark - sent, 5_000)
            sent = mark
            rss[str(mark)] = round(rss_mb(ingest.pid), 1)
        out["rss_mb_after_players"] = rss
        ingest.stop()  # its materializer would fold what the next steps measure
        ingest = None
        # Per fold, each player's actions are folded together: new players, one action each, is the
        # worst case (every action a new player and player-hour); known players, one action each per
        # fold, is steady play at about one action per player per minute (a fold every second);
        # 5 per player is denser play, or folds five minutes apart.
        out["write_costs"] = await write_costs.measure(dsn)
        out["write_costs_known"] = await write_costs.measure(dsn, known=True)
        out["write_costs_dense"] = await write_costs.measure(dsn, per_player=5, known=True)
        out["backlog"] = await bench_backlog(dsn, args.backlog or (1_000_000 if quick else 10_000_000))
        keyed = [v for k, v in res.items() if k.startswith("stream_1000_keyed")]
        if keyed:
            out["backlog"]["over_streaming_rate"] = round(out["backlog"]["folded_per_s"] / keyed[0]["rows_per_s"], 2)
        return out
    finally:
        if envoy is not None:
            envoy.stop()
        if ingest is not None:
            ingest.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def table(out: dict) -> str:
    lines = [f"{'mode':<24}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'vs COPY':>9}"]
    ratios = out["ratios_to_copy_1000"]
    for k, v in out["throughput"].items():
        if "rows_per_s" in v:
            lines.append(f"{k:<24}{v.get('rows', v.get('calls')):>10}{v['seconds']:>10.2f}{v['rows_per_s']:>12,.0f}"
                         f"{ratios[k]:>9.2f}")
    for key in ("seed_1000_sequential", "seed_1000_sequential_envoy", "seed_1000_json_envoy"):
        if key in out["throughput"]:
            lines.append(f"{key}: 1000 sequential RecordAction calls in {out['throughput'][key]['seconds']:.2f} s")
    if "python_us_per_action" in out:
        py = out["python_us_per_action"]
        lines.append(f"Python decode + validate per action (1,000-action batch): actions {py['actions']:.2f} µs, "
                     f"columns {py['columns']:.2f} µs")
    if "per_call_ms" in out:
        lines.append(f"PostgreSQL alone, 1000 sequential: SELECT 1 {out['store_floor']['select_1_seconds']:.2f} s, "
                     f"one-row write {out['store_floor']['one_row_write_seconds']:.2f} s")
        lines.append("one sequential RecordAction, ms:")
        lines.extend(f"  {k:<66}{v:>7.3f}" for k, v in out["per_call_ms"].items())
    lines.append(f"stream(10k batches) / COPY(10k batches) = {out['ratio_stream_10000_to_copy_10000']:.2f}")
    for family, lag in out.get("fold_lag_seconds", {}).items():
        lines.append(f"fold lag while streaming, {family}: p50 {lag['p50']:.2f} s, p99 {lag['p99']:.2f} s, "
                     f"max {lag['max']:.2f} s")
    lines.append(f"ingest RSS MB: idle {out['rss_mb_idle']:.1f}, after players {out['rss_mb_after_players']}")
    for f in out.get("noop_floor", []):
        lines.append(f"no-op RPC floor {f['path']}: 1000 sequential in {f['sequential_1000_seconds']:.2f} s, "
                     f"{f['calls_per_s_2proc']:,} calls/s from 2 client processes")
    if "backlog" in out:
        b = out["backlog"]
        lines.append(f"backlog of {b['actions']:,}: folded in {b['fold_seconds']:.1f} s = {b['folded_per_s']:,} actions/s"
                     + (f" = {b['over_streaming_rate']:.1f}x the keyed streaming rate" if "over_streaming_rate" in b else "")
                     + " (" + ", ".join(f"{k} {v['seconds']} s" for k, v in b["folds"].items()) + ")")
    for key in ("write_costs", "write_costs_known", "write_costs_dense"):
        if key in out:
            lines.append(write_costs.table(out[key]))
    return "\n".join(lines)


def main() -> int:
    parser = cli.CommandParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (a minute or two)")
    parser.add_argument("--backlog", type=int, default=0, help="actions in the fold backlog run (default 10M; 1M with --quick)")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    print(table(out))
    results.save("ingest", out)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.ingest"))

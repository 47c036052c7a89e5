"""Query service benchmark: p50/p99 of every RPC through the Envoy gateway, beside the seed's raw
SQL over player_actions_ts in the same run, with ratios.

    .venv/bin/python -m bench.query [--quick] [--no-time-index]

Starts its own PostgreSQL 15 under a temp dir (plain: no TimescaleDB on this machine;
shared_buffers 256MB), migrates it with the ingest service's migrations, COPYs 10,000,000 actions
from 100,000 players spread over the last 24 h (``--quick``: 1,000,000), fills the rollups the way
the plain-PostgreSQL contract maintains them, and runs the query service as a separate process
behind Envoy (rendered from deploy/envoy/envoy.tmpl.yaml via the test harness, with edge
authentication off: ext_authz would need the session service).

Measured per RPC: the service as deployed (shared dashboard results, QUERY_SNAPSHOT_FRESH_MS
default) through Envoy; the same RPCs with sharing off (every call computed from the rollups) to
show the computation itself; and the seed's SQL over the raw table, called directly with asyncpg.
The ingest schema has no time index on plain PostgreSQL (TimescaleDB hypertables get one by
default), so unless ``--no-time-index`` is given the bench adds a btree on player_actions_ts(time):
it makes the raw baseline faster (a stronger baseline), and the service's raw edge reads cheaper.

Prints a table and writes bench/results/query.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import pwd
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import grpc

from banhammer.common.v1 import common_pb2
from banhammer.query.v1 import query_pb2 as pb
from banhammer.query.v1 import query_pb2_grpc
from bench import results as saved
from services.runtime import cli
from services.ingest.store import fold, partitions
from services.ingest.store.migrate import migrate
from tests.harness.appends import append
from tests.harness.envoy import EnvoyGateway
from tests.harness.health import check_health
from tests.harness.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TYPES = ("kill", "loot", "move", "trade", "reward_collection")
RULES = (("reward_rate", 3), ("impossible_value", 4), ("trade_burst", 2), ("login_spam", 1), ("speed", 3))
SERVICE = "banhammer.query.v1.QueryService"
TARGET_P99_MS = 20.0
TARGET_RATIO = 100.0

# The query service's read-only role (as the local stack and Kubernetes create it).
READ_ONLY_ROLE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'banhammer_query') THEN
    CREATE ROLE banhammer_query LOGIN;
  END IF;
END $$;
ALTER ROLE banhammer_query SET default_transaction_read_only = on;
GRANT USAGE ON SCHEMA public TO banhammer_query;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO banhammer_query;"""


# --- servers ---------------------------------------------------------------------------------
def _as_postgres(argv: list[str]) -> list[str]:
    if os.getuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


def start_postgres(workdir: Path) -> tuple[ManagedProcess, int]:
    data = workdir / "pgdata"
    if os.getuid() == 0:  # PostgreSQL refuses root: run it as `postgres`, able to reach its dirs
        pw = pwd.getpwnam("postgres")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        d = workdir
        while str(d) != "/":
            os.chmod(d, os.stat(d).st_mode | 0o001)
            d = d.parent
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "-E", "UTF8", "--locale=C.UTF-8"]), check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    settings = {"listen_addresses": "127.0.0.1", "max_connections": "50", "shared_buffers": "256MB",
                "max_parallel_workers_per_gather": "1", "max_wal_size": "4GB", "checkpoint_timeout": "30min",
                "synchronous_commit": "off", "timezone": "UTC"}
    argv = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir)]
    for k, v in settings.items():
        argv += ["-c", f"{k}={v}"]
    proc = ManagedProcess("postgres", _as_postgres(argv), workdir / "postgres.log").start()

    def ready() -> bool:
        return subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL).returncode == 0

    wait_until(ready, 30, "postgres ready", proc)
    return proc, port


def start_query(workdir: Path, name: str, dsn: str, **env: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    environ = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port),
               "QUERY_DATABASE_URL": dsn, "LOG_LEVEL": "WARNING", "OTEL_SDK_DISABLED": "true", **env}
    proc = ManagedProcess(name, [sys.executable, "-m", "services.query"], workdir / f"{name}.log",
                          env=environ, cwd=REPO).start()
    addr = f"127.0.0.1:{port}"
    wait_until(lambda: check_health(addr, SERVICE) == "SERVING", 60, f"{name} SERVING", proc)
    return proc, addr


# --- data ------------------------------------------------------------------------------------
# A summary row exists from a player's first violation or ban; 1% of the players get a ban.
BAN_SOME = """INSERT INTO player_summary (player_id, banned_until)
SELECT DISTINCT player_id, now() + INTERVAL '1 day' FROM player_hours WHERE hashtext(player_id) % 100 = 0
ON CONFLICT (player_id) DO UPDATE SET banned_until = EXCLUDED.banned_until"""

FILL_VIOLATIONS = """
INSERT INTO violations_ts (detected_at, player_id, rule, severity, evidence, window_start, window_end, ban_requested)
SELECT t, 'p' || (g * 7919 % $2), ($3::text[])[1 + g % 5], ($4::smallint[])[1 + g % 5],
       jsonb_build_object('count', g % 900, 'limit', 500), t - INTERVAL '1 minute', t, g % 10 = 0
FROM (SELECT g, now() - (g % 86400) * INTERVAL '1 second' AS t FROM generate_series(1, $1) g) s"""


async def load(dsn: str, actions: int, players: int, time_index: bool, now: datetime) -> dict[str, float]:
    """Migrate, COPY the actions, fill rollups/summary/violations; returns step timings (s)."""
    timings: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        await migrate(conn)
        await partitions.ensure_days(conn, partitions.days_between(now - timedelta(days=1), now + timedelta(days=1)))
        rnd = random.Random(42)
        ids = [f"p{i}" for i in range(players)]
        start, span = now - timedelta(days=1), 86400.0
        chunk = 250_000
        for offset in range(0, actions, chunk):
            n = min(chunk, actions - offset)
            # Skewed players (some far busier than others), uniform times over the last 24 h.
            rows = [(start + timedelta(seconds=span * rnd.random()), ids[int(players * rnd.random() ** 2)],
                     TYPES[int(rnd.random() * 5)], float(int(rnd.random() * 100)), None, None) for _ in range(n)]
            await append(conn, rows, copy=True)
        timings["copy_actions_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        await conn.execute("SET work_mem = '256MB'")
        await fold.drain(conn)
        await conn.execute(BAN_SOME)
        await conn.execute(FILL_VIOLATIONS, 20_000, players, [r for r, _ in RULES], [s for _, s in RULES])
        timings["fold_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if time_index:
            await conn.execute("CREATE INDEX IF NOT EXISTS bench_player_actions_time ON player_actions_ts (time)")
        await conn.execute("VACUUM ANALYZE")
        timings["index_vacuum_s"] = time.perf_counter() - t0
        await conn.execute(READ_ONLY_ROLE)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM player_actions_ts) AS raw, (SELECT count(*) FROM action_type_stats_1min) AS m,"
            " (SELECT count(*) FROM player_hours) AS h, (SELECT players FROM player_count) AS players")
        timings.update({f"rows_{k}": v for k, v in counts.items()})
    finally:
        await conn.close()
    return timings


# --- the seed's raw SQL (baseline) -----------------------------------------------------------
RAW_OVERVIEW = [
    "SELECT count(*), count(DISTINCT player_id) FROM player_actions_ts WHERE time >= now() - INTERVAL '1 minute' AND time < now()",
    "SELECT count(*), count(DISTINCT player_id) FROM player_actions_ts WHERE time >= now() - INTERVAL '1 hour' AND time < now()",
    "SELECT count(*), count(DISTINCT player_id) FROM player_actions_ts WHERE time >= now() - INTERVAL '24 hours' AND time < now()",
    "SELECT rule, max(severity), count(*) FROM violations_ts WHERE detected_at >= now() - INTERVAL '24 hours' GROUP BY rule",
    "SELECT severity, count(*) FROM violations_ts WHERE detected_at >= now() - INTERVAL '24 hours' GROUP BY severity",
    "SELECT count(*), count(*) FILTER (WHERE banned_until > now()) FROM player_summary",
]
RAW_TOP = """SELECT player_id, COUNT(*) as action_count, date_trunc('hour', MAX(time)) as last_activity
FROM player_actions_ts WHERE time >= NOW() - INTERVAL '1 hour' GROUP BY player_id ORDER BY action_count DESC LIMIT 10"""
RAW_HOURLY = """SELECT date_trunc('hour', time) as hour, COUNT(*) as actions, COUNT(DISTINCT player_id) as unique_players
FROM player_actions_ts WHERE time >= NOW() - INTERVAL '24 hours' GROUP BY hour ORDER BY hour"""
RAW_PLAYER = [
    "SELECT * FROM player_summary WHERE player_id = $1",
    "SELECT * FROM violations_ts WHERE player_id = $1 ORDER BY detected_at DESC, id DESC LIMIT 10",
    "SELECT date_trunc('minute', time), count(*), sum(value) FROM player_actions_ts WHERE player_id = $1"
    " AND time >= now() - INTERVAL '1 hour' GROUP BY 1 ORDER BY 1",
]
RAW_ACTIONS = ("SELECT * FROM player_actions_ts WHERE player_id = $1 AND time >= now() - INTERVAL '24 hours'"
               " ORDER BY time DESC LIMIT 100")
RAW_VIOLATIONS = "SELECT * FROM violations_ts ORDER BY detected_at DESC, id DESC LIMIT 100"
RAW_STORAGE = """SELECT schemaname, tablename, pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) as size
FROM pg_tables WHERE tablename LIKE '%_ts' ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC"""


def raw_calls(player: str) -> dict[str, list[tuple[str, tuple]]]:
    return {
        "GetStatsOverview": [(q, ()) for q in RAW_OVERVIEW],
        "GetTopPlayers": [(RAW_TOP, ())],
        "GetHourlyLoad": [(RAW_HOURLY, ())],
        "GetPlayer": [(q, (player,)) for q in RAW_PLAYER],
        "ListPlayerActions": [(RAW_ACTIONS, (player,))],
        "ListViolations": [(RAW_VIOLATIONS, ())],
        "GetStorageStats": [(RAW_STORAGE, ())],
    }


# --- measurement -----------------------------------------------------------------------------
def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(round(q * (len(s) - 1))))]  # noqa: E731
    return {"n": len(s), "p50_ms": pick(0.50) * 1000, "p99_ms": pick(0.99) * 1000, "mean_ms": statistics.fmean(s) * 1000}


def time_calls(call: Callable[[], object], n: int, warmup: int, min_seconds: float = 0.0) -> dict[str, float]:
    """``n`` sequential calls, continuing until ``min_seconds`` have passed (so that shared results
    expire and are recomputed in the background during the measurement)."""
    for _ in range(warmup):
        call()
    samples = []
    started = time.perf_counter()
    while len(samples) < n or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


async def time_raw(dsn: str, statements: list[tuple[str, tuple]], n: int) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        samples = []
        for _ in range(n + 1):  # the first run warms the cache and is dropped
            t0 = time.perf_counter()
            async with conn.transaction(readonly=True):
                for q, args in statements:
                    await conn.fetch(q, *args)
            samples.append(time.perf_counter() - t0)
        return percentiles(samples[1:])
    finally:
        await conn.close()


def rpc_requests(player: str, now: datetime) -> dict[str, tuple[str, object]]:
    start = common_pb2.TimeRange()
    start.start_time.FromDatetime(now - timedelta(hours=24))
    return {
        "GetStatsOverview": ("GetStatsOverview", pb.GetStatsOverviewRequest()),
        "GetTopPlayers": ("GetTopPlayers", pb.GetTopPlayersRequest()),
        "GetHourlyLoad": ("GetHourlyLoad", pb.GetHourlyLoadRequest()),
        "GetPlayer": ("GetPlayer", pb.GetPlayerRequest(player_id=player)),
        "ListPlayerActions": ("ListPlayerActions", pb.ListPlayerActionsRequest(player_id=player, time_range=start)),
        "ListViolations": ("ListViolations", pb.ListViolationsRequest()),
        "GetStorageStats": ("GetStorageStats", pb.GetStorageStatsRequest()),
    }


def measure_rpcs(addr: str, requests: dict, n: int, warmup: int, timeout: float,
                 dashboard_seconds: float = 0.0) -> dict[str, dict]:
    out = {}
    with grpc.insecure_channel(addr) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        for name, (method, request) in requests.items():
            fn = getattr(stub, method)
            seconds = dashboard_seconds if name in DASHBOARD else 0.0
            out[name] = time_calls(lambda: fn(request, timeout=timeout), n, warmup, seconds)
    return out


def prewarm(addr: str, requests: dict) -> dict[str, float]:
    """First (cold) call of each dashboard RPC, straight to the service: it computes the shared
    result, which can take longer than the gateway's 10 s route timeout at 10M actions."""
    cold = {}
    with grpc.insecure_channel(addr) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        for name in DASHBOARD:
            method, request = requests[name]
            t0 = time.perf_counter()
            getattr(stub, method)(request, timeout=120)
            cold[name] = (time.perf_counter() - t0) * 1000
    return cold


DASHBOARD = ("GetStatsOverview", "GetTopPlayers", "GetHourlyLoad")


def report(results: dict) -> None:
    print()
    print(f"{'RPC':<18} {'gateway p50':>11} {'p99':>8} | {'computed p50':>12} {'p99':>8} | {'raw SQL p50':>11} {'p99':>9}"
          f" | {'x p50':>7} {'x p99':>7}")
    for name, row in results["rpcs"].items():
        g, c, r = row["gateway"], row["computed"], row["raw_sql"]
        print(f"{name:<18} {g['p50_ms']:>9.2f}ms {g['p99_ms']:>6.2f}ms | {c['p50_ms']:>10.2f}ms {c['p99_ms']:>6.2f}ms |"
              f" {r['p50_ms']:>9.2f}ms {r['p99_ms']:>7.2f}ms | {row['ratio_p50']:>6.1f}x {row['ratio_p99']:>6.1f}x")
    print()
    for name in DASHBOARD:
        row = results["rpcs"][name]
        ok_latency = row["gateway"]["p99_ms"] < TARGET_P99_MS
        ok_ratio = row["ratio_p99"] >= TARGET_RATIO
        print(f"{name}: p99 {row['gateway']['p99_ms']:.2f} ms (target < {TARGET_P99_MS:.0f}: {'met' if ok_latency else 'MISSED'}),"
              f" {row['ratio_p99']:.0f}x raw SQL at p99 (target >= {TARGET_RATIO:.0f}x: {'met' if ok_ratio else 'MISSED'})")


async def run(args: argparse.Namespace) -> dict:
    actions = 1_000_000 if args.quick else 10_000_000
    players = 100_000
    n_fast, n_computed, n_raw = (200, 5, 3) if args.quick else (500, 10, 5)
    seconds = 12.0 if args.quick else 30.0  # > QUERY_SNAPSHOT_FRESH_MS (5 s) several times over
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        workdir = Path(tmp)
        pg, port = start_postgres(workdir)
        procs: list[ManagedProcess] = [pg]
        gw = None
        try:
            owner = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            reader = f"postgresql://banhammer_query@127.0.0.1:{port}/postgres"
            now = datetime.now(timezone.utc)
            print(f"loading {actions:,} actions from {players:,} players over the last 24 h ...", flush=True)
            timings = await load(owner, actions, players, not args.no_time_index, now)
            print("  " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v:,}" for k, v in timings.items()))

            conn = await asyncpg.connect(owner)
            player = await conn.fetchval("SELECT player_id FROM player_hours GROUP BY 1 ORDER BY sum(actions) DESC"
                                         " OFFSET 1000 LIMIT 1")
            await conn.close()

            shared, shared_addr = start_query(workdir, "query", reader)
            # Every call computed; the 5 s default cap would cut the 24 h computations at 10M actions.
            computed, computed_addr = start_query(workdir, "query-computed", reader, QUERY_SNAPSHOT_FRESH_MS="0",
                                                  QUERY_STATEMENT_TIMEOUT_MS="60000")
            procs += [shared, computed]
            # Edge authentication off (as the local stack allows): ext_authz would need the session
            # service and add its own hop; this measures the gateway's routing/HTTP2 proxying.
            gw = EnvoyGateway(workdir / "envoy", {"query": shared_addr}, auth=False).start()
            wait_until(lambda: check_health(gw.addr, SERVICE, metadata=(("x-banhammer-service", "query"),)) == "SERVING",
                       30, "query SERVING through Envoy", gw.proc)

            requests = rpc_requests(player, now)
            cold = prewarm(shared_addr, requests)
            print("  cold first calls (computing the shared result): "
                  + ", ".join(f"{k} {v:.0f} ms" for k, v in cold.items()), flush=True)
            print(f"measuring through the gateway (shared results as deployed; dashboard RPCs for {seconds:.0f} s"
                  " each, spanning background recomputations) ...", flush=True)
            gateway = measure_rpcs(gw.addr, requests, n_fast, warmup=20, timeout=60, dashboard_seconds=seconds)
            print("measuring every call computed from the rollups (direct to the service) ...", flush=True)
            comp = measure_rpcs(computed_addr, requests, n_computed, warmup=1, timeout=120)
            print("measuring the seed's raw SQL over player_actions_ts ...", flush=True)
            raw = {}
            for name, statements in raw_calls(player).items():
                heavy = name in DASHBOARD
                raw[name] = await time_raw(owner, statements, n_raw if heavy else n_fast // 5)
        finally:
            if gw is not None:
                gw.stop()
            for proc in reversed(procs):
                proc.stop()

    rpcs = {}
    for name in requests:
        rpcs[name] = {"gateway": gateway[name], "computed": comp[name], "raw_sql": raw[name],
                      "ratio_p50": raw[name]["p50_ms"] / gateway[name]["p50_ms"],
                      "ratio_p99": raw[name]["p99_ms"] / gateway[name]["p99_ms"],
                      "computed_ratio_p50": raw[name]["p50_ms"] / comp[name]["p50_ms"]}
    return {
        "command": ".venv/bin/python -m bench.query" + (" --quick" if args.quick else "")
                   + (" --no-time-index" if args.no_time_index else ""),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": "15 (plain, no TimescaleDB)"},
        "data": {"actions": actions, "players": players, "span_hours": 24, "time_index": not args.no_time_index,
                 **{k: v for k, v in timings.items()}},
        "path": "gateway = grpc client -> Envoy (auth off) -> query service (default QUERY_SNAPSHOT_FRESH_MS); computed = direct "
                "to a second instance with QUERY_SNAPSHOT_FRESH_MS=0; raw_sql = the seed's SQL via asyncpg",
        "targets": {"dashboard_p99_ms": TARGET_P99_MS, "ratio_vs_raw": TARGET_RATIO},
        "cold_first_call_ms": cold,
        "rpcs": rpcs,
    }


def main() -> None:
    parser = cli.CommandParser(prog="python -m bench.query", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 actions instead of 10,000,000")
    parser.add_argument("--no-time-index", action="store_true", help="keep ingest's schema exactly (no index on time)")
    results = asyncio.run(run(parser.parse_args()))
    report(results)
    saved.save("query", results)


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.query"))

"""Stats at 50M-player scale (issue 12): computed answers through Envoy over 100M actions.

    .venv/bin/python -m bench.scale [--scale 0.01] [--calls 200]

Outside CI (the full size takes hours and tens of GB): ``--scale`` shrinks every count, e.g. 0.01
is 1M actions, 100k players, 10k active in the last hour. At scale 1: 100,000,000 actions from
10,000,000 players over 7 days of event time, 1,000,000 of them active in the last hour (3% of the
actions), skewed (a few players far busier than most).

Starts its own PostgreSQL 15 (plain; with the hll extension when installed), migrates it with
ingest's migrations, COPYs the actions in batches the way ingest's append-only writer stores them
(``tests/harness/appends.py``: a batch id per batch, a row per batch in every fold queue), folds
them with ingest's fold (timed: rows per second per family), and runs the query service with shared
snapshots off (``QUERY_SNAPSHOT_FRESH_MS=0``: every call computed) behind Envoy (edge auth off).
Measured, p50/p99 through Envoy: overview, hourly load (24 h), top players (1 h and 24 h), player
investigation (GetPlayer), violations list; beside the seed's raw SQL for the dashboard questions
in the same run. Also: distinct players against an exact count, the rankings' stated bound, and
storage bytes per action (raw table with its indexes, and the aggregates).

Prints a table and writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import grpc
from google.protobuf import duration_pb2

from banhammer.query.v1 import query_pb2 as pb
from banhammer.query.v1 import query_pb2_grpc
from bench import results as saved
from bench.query import BAN_SOME, READ_ONLY_ROLE, RULES, TYPES, start_postgres, start_query, time_calls, time_raw
from services.ingest.store import fold, partitions
from services.ingest.store.migrate import migrate
from services.runtime import cli
from tests.harness.appends import append
from tests.harness.envoy import EnvoyGateway
from tests.harness.health import check_health
from tests.harness.processes import ManagedProcess, wait_until

REPO = Path(__file__).resolve().parents[1]
SERVICE = "banhammer.query.v1.QueryService"
FULL = {"actions": 100_000_000, "players": 10_000_000, "active_last_hour": 1_000_000, "days": 7}
LAST_HOUR_SHARE = 0.03
# Actions per batch at full scale (ingest commits at most INGEST_COMMIT_MAX_ROWS = 5,000), shrunk with
# the data: what matters to the planner is how many batches a day partition holds (batch_id's
# statistics), so a 1% run keeps the full run's ratio.
BATCH_ROWS = 5_000
TARGETS_P99_MS = {"overview": 50, "hourly load 24h": 50, "top players 1h": 500, "player investigation": 20}


def progress(label: str, done: int, total: int, started: float) -> None:
    """A one-line progress bar (stderr), redrawn in place."""
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done:>12,}/{total:,} {rate:>10,.0f}/s",
          end="" if done < total else "\n", file=sys.stderr, flush=True)


def _rows(rnd: random.Random, n: int, first: int, size: dict, now: datetime) -> list[tuple]:
    """Rows ``first .. first+n`` of the data set, in event-time order as ingest receives them
    (BRIN on time then works as in production): 7 days of skewed history, then the last hour's
    share (every active player once, then skewed among them)."""
    total, players, active = size["actions"], size["players"], size["active_last_hour"]
    recent = int(total * LAST_HOUR_SHARE)
    history, span = total - recent, timedelta(days=size["days"]).total_seconds() - 3600
    out = []
    for i in range(first, first + n):
        if i < history:
            p = int(players * rnd.random() ** 2)
            t = now - timedelta(seconds=3600 + span * (1 - (i + rnd.random()) / history))
        else:
            j = i - history
            p = j if j < active else int(active * rnd.random() ** 3)
            t = now - timedelta(seconds=3600 * (1 - (j + rnd.random()) / recent))
        out.append((t, f"p{p}", TYPES[int(rnd.random() * len(TYPES))], float(int(rnd.random() * 100))))
    return out


VIOLATIONS = """
INSERT INTO violations_ts (detected_at, player_id, rule, severity, evidence, window_start, window_end, ban_requested)
SELECT t, 'p' || (g * 7919 % $2), ($3::text[])[1 + g % 5], ($4::smallint[])[1 + g % 5],
       jsonb_build_object('count', g % 900), t - INTERVAL '1 minute', t, g % 10 = 0
FROM (SELECT g, now() - (g % ($5 * 86400)) * INTERVAL '1 second' AS t FROM generate_series(1, $1) g) s"""

SIZES = """
SELECT c.relname AS name, sum(pg_total_relation_size(coalesce(t.relid, c.oid)))::bigint AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL pg_partition_tree(c.oid) t ON c.relkind = 'p'
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname = ANY($1::text[])
GROUP BY 1 ORDER BY 2 DESC"""
AGGREGATES = ("action_type_stats_1min", "action_type_stats_1h", "player_sketch_1min", "player_sketch_1h",
              "players_seen_1min", "players_seen_1h", "player_hours", "top_players_1h", "violation_counts_1h",
              "player_count")


async def load(dsn: str, size: dict, now: datetime) -> dict:
    """Migrate, COPY in batches (queued for the folds), fold; returns timings and sizes."""
    out: dict = {}
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        out["hll"] = await fold.has_hll(conn)
        await partitions.ensure_days(conn, partitions.days_between(now - timedelta(days=size["days"] + 1),
                                                                   now + timedelta(days=1)))
        rnd = random.Random(42)
        total, started = size["actions"], time.perf_counter()
        batch = max(50, int(BATCH_ROWS * size["actions"] / FULL["actions"]))
        for first in range(0, total, batch):
            await append(conn, _rows(rnd, min(batch, total - first), first, size, now), copy=True)
            if first // batch % 100 == 0 or first + batch >= total:
                progress("copy", min(first + batch, total), total, started)
        out["copy_s"] = time.perf_counter() - started
        await conn.execute(VIOLATIONS, max(100, total // 500), size["players"], [r for r, _ in RULES],
                           [s for _, s in RULES], size["days"])
        out["fold_rows_per_s"] = {}
        for family in fold.FAMILIES:
            t0 = time.perf_counter()
            folded = await fold.drain(conn, (family,), max_batches=1000)
            out["fold_rows_per_s"][family] = folded[family] / (time.perf_counter() - t0)
            progress(f"fold {family}", folded[family], total, t0)
        await conn.execute(BAN_SOME)
        await conn.execute("VACUUM ANALYZE")
        await conn.execute(READ_ONLY_ROLE)
        sizes = {r["name"]: r["bytes"] for r in await conn.fetch(SIZES, ["player_actions_ts", *AGGREGATES])}
        out["bytes"] = sizes
        out["bytes_per_action"] = {"raw (table + indexes)": sizes["player_actions_ts"] / total,
                                   "aggregates": sum(v for k, v in sizes.items() if k != "player_actions_ts") / total}
        out["investigated"] = [r["player_id"] for r in await conn.fetch(
            "SELECT player_id FROM (SELECT DISTINCT player_id FROM player_hours) p ORDER BY hashtext(player_id) LIMIT 50")]
    finally:
        await conn.close()
    return out


def _duration(d: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(d)
    return out


EXACT_PLAYERS = """
SELECT count(DISTINCT player_id) FILTER (WHERE time >= $1::timestamptz - INTERVAL '1 hour') AS players_1h,
       count(DISTINCT player_id) AS players_24h
FROM player_actions_ts WHERE time >= $1::timestamptz - INTERVAL '1 day' AND time < $1::timestamptz"""


async def exact_players(dsn: str, as_of: datetime) -> dict:
    """Distinct players in the hour and the day before ``as_of``, counted over the raw rows."""
    conn = await asyncpg.connect(dsn)
    try:
        return dict(await conn.fetchrow(EXACT_PLAYERS, as_of))
    finally:
        await conn.close()


def measure(addr: str, players: list[str], calls: int) -> tuple[dict, dict]:
    """p50/p99 per question through the gateway, and the answers' accuracy."""
    results, accuracy = {}, {}
    with grpc.insecure_channel(addr) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        rotation = iter(range(10**9))
        questions = {
            "overview": lambda: stub.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=60),
            "hourly load 24h": lambda: stub.GetHourlyLoad(pb.GetHourlyLoadRequest(hours=24), timeout=60),
            "top players 1h": lambda: stub.GetTopPlayers(pb.GetTopPlayersRequest(window=_duration(timedelta(hours=1))),
                                                         timeout=60),
            "top players 24h": lambda: stub.GetTopPlayers(
                pb.GetTopPlayersRequest(window=_duration(timedelta(days=1))), timeout=60),
            "player investigation": lambda: stub.GetPlayer(
                pb.GetPlayerRequest(player_id=players[next(rotation) % len(players)]), timeout=60),
            "violations list": lambda: stub.ListViolations(pb.ListViolationsRequest(), timeout=60),
        }
        for name, call in questions.items():
            results[name] = time_calls(call, calls, warmup=3)
        o = questions["overview"]()
        accuracy["overview"] = {"as_of": o.as_of.ToDatetime(tzinfo=timezone.utc),
                                "unique_players_1h": o.last_hour.unique_players,
                                "unique_players_24h": o.last_day.unique_players,
                                "exact": o.last_hour.unique_players_accuracy.exact,
                                "stated_bound": o.last_hour.unique_players_accuracy.relative_error}
        for name in ("top players 1h", "top players 24h"):
            a = questions[name]().accuracy
            accuracy[name] = {"exact": a.exact, "exact_ranks": a.exact_ranks, "unlisted_max_count": a.unlisted_max_count}
    return results, accuracy


RAW = {
    "overview": [("SELECT count(*), count(DISTINCT player_id) FROM player_actions_ts WHERE time >= now() - INTERVAL '1 hour'", ()),
                 ("SELECT count(*), count(DISTINCT player_id) FROM player_actions_ts WHERE time >= now() - INTERVAL '24 hours'", ())],
    "hourly load 24h": [("SELECT date_trunc('hour', time), count(*), count(DISTINCT player_id) FROM player_actions_ts"
                         " WHERE time >= now() - INTERVAL '24 hours' GROUP BY 1", ())],
    "top players 1h": [("SELECT player_id, count(*) FROM player_actions_ts WHERE time >= now() - INTERVAL '1 hour'"
                        " GROUP BY 1 ORDER BY 2 DESC LIMIT 10", ())],
}


async def run(args: argparse.Namespace) -> dict:
    size = {k: max(1, int(v * args.scale)) if k != "days" else v for k, v in FULL.items()}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        pg, port = start_postgres(workdir)
        procs: list[ManagedProcess] = [pg]
        gw = None
        try:
            owner = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            reader = f"postgresql://banhammer_query@127.0.0.1:{port}/postgres"
            now = datetime.now(timezone.utc)
            print(f"scale {args.scale}: {size['actions']:,} actions, {size['players']:,} players over {size['days']} days,"
                  f" {size['active_last_hour']:,} active in the last hour", flush=True)
            loaded = await load(owner, size, now)
            query, addr = start_query(workdir, "query", reader, QUERY_SNAPSHOT_FRESH_MS="0",
                                      QUERY_STATEMENT_TIMEOUT_MS="60000")
            procs.append(query)
            gw = EnvoyGateway(workdir / "envoy", {"query": addr}, auth=False).start()
            wait_until(lambda: check_health(gw.addr, SERVICE, metadata=(("x-banhammer-service", "query"),)) == "SERVING",
                       30, "query SERVING through Envoy", gw.proc)
            print("measuring through Envoy, every call computed ...", flush=True)
            latency, accuracy = measure(gw.addr, loaded["investigated"], args.calls)
            # At the overview's own instant: the windows move while the benchmark runs.
            exact = await exact_players(owner, accuracy["overview"].pop("as_of"))
            print("measuring the seed's raw SQL (same run) ...", flush=True)
            raw = {name: await time_raw(owner, statements, 3) for name, statements in RAW.items()}
        finally:
            if gw is not None:
                gw.stop()
            for proc in reversed(procs):
                proc.stop()
    accuracy["overview"]["error_1h"] = accuracy["overview"]["unique_players_1h"] / exact["players_1h"] - 1
    accuracy["overview"]["error_24h"] = accuracy["overview"]["unique_players_24h"] / exact["players_24h"] - 1
    loaded.pop("investigated")
    return {
        "command": f".venv/bin/python -m bench.scale --scale {args.scale} --calls {args.calls}",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": "15 (plain)"},
        "scale": args.scale, "data": size, "load": loaded, "exact": exact,
        "path": "grpc client -> Envoy (auth off) -> query service (QUERY_SNAPSHOT_FRESH_MS=0) -> PostgreSQL",
        "latency": latency, "raw_sql": raw, "accuracy": accuracy, "targets_p99_ms": TARGETS_P99_MS,
    }


def report(r: dict) -> None:
    print(f"\nscale {r['scale']} ({r['data']['actions']:,} actions); every call computed, through Envoy")
    print(f"{'question':<22} {'p50':>9} {'p99':>9} {'target p99':>11} | {'seed raw SQL p50':>16}")
    for name, row in r["latency"].items():
        target = r["targets_p99_ms"].get(name)
        raw = r["raw_sql"].get(name)
        target_text = f"< {target} ms" if target else ""
        raw_text = f"{raw['p50_ms']:.1f} ms" if raw else ""
        print(f"{name:<22} {row['p50_ms']:>7.2f}ms {row['p99_ms']:>7.2f}ms {target_text:>11} | {raw_text:>16}")
    a = r["accuracy"]["overview"]
    print(f"distinct players: 1h {a['unique_players_1h']:,} ({a['error_1h']:+.2%} vs exact),"
          f" 24h {a['unique_players_24h']:,} ({a['error_24h']:+.2%}); stated bound {a['stated_bound']:.0%}"
          f" ({'exact' if a['exact'] else 'HLL'})")
    for name in ("top players 1h", "top players 24h"):
        t = r["accuracy"][name]
        print(f"{name}: exact ranks 1..{t['exact_ranks']:,}, unlisted players have at most {t['unlisted_max_count']}")
    load = r["load"]
    print("fold rows/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in load["fold_rows_per_s"].items())
          + f"; COPY {r['data']['actions'] / load['copy_s']:,.0f} rows/s")
    print("storage bytes per action: " + ", ".join(f"{k} {v:.1f}" for k, v in load["bytes_per_action"].items()))


def main() -> None:
    parser = cli.CommandParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.01, help="fraction of the full size (1 = 100M actions)")
    parser.add_argument("--calls", type=int, default=200, help="calls per question")
    results = asyncio.run(run(parser.parse_args()))
    report(results)
    saved.save("scale", results)


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.scale"))

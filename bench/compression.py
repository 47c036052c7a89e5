"""Storage per action on TimescaleDB, compressed, beside plain PostgreSQL (issue 12).

The same generated actions (shaped like ``bench.scale``'s: skewed players, four action types, a
week of event time) are inserted into ingest's real schema twice, server-side with
``generate_series`` so the client moves no rows:

* plain PostgreSQL 15: ``player_actions_ts`` with its partitions and indexes, the baseline;
* TimescaleDB 2.23 (PGlite, the build CI runs): the hypertable before and after compressing every
  chunk with the migration's settings (segment by player, order by time descending).

Prints bytes per action for each, and writes ``bench/results/compression.json``. One command:
``python -m bench.compression [--actions N] [--per-player K]`` (about a minute at the default
300,000). Compression groups a chunk's rows by player, so it gains with actions per player.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from bench import results
from bench.ingest import start_postgres
from services.ingest.store import partitions
from services.ingest.store.migrate import migrate
from services.runtime import cli
from tests.timescale.pglite import Connection, Server, unavailable

DAYS = 7

# Deterministic rows: player i with weight ~1/(i+1) (a few heavy players, a long tail), times over
# the last week, one of four action types.
INSERT = f"""
INSERT INTO player_actions_ts (time, player_id, action_type, value)
SELECT $2::timestamptz - (g % ({DAYS} * 86400)) * INTERVAL '1 second' - (g % 997) * INTERVAL '1 millisecond',
       'p' || floor(power($3::float8, ((g * 2654435761::bigint) % 1000003) / 1000003.0))::bigint,
       (ARRAY['kill', 'loot', 'move', 'reward_collection'])[1 + g % 4],
       (g % 1000)::float8
FROM generate_series(1, $1::int) g"""

PLAIN_SIZE = """
SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('player_actions_ts')"""


async def plain(actions: int, players: int, now: datetime, workdir: Path) -> dict:
    pg, dsn = start_postgres(workdir)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, compress_after_days=7)
            await partitions.ensure_days(conn, partitions.days_between(now - timedelta(days=DAYS + 1), now))
            t0 = time.perf_counter()
            await conn.execute(INSERT, actions, now, float(players))
            took = time.perf_counter() - t0
            await conn.execute("VACUUM ANALYZE player_actions_ts")
            size = await conn.fetchval(PLAIN_SIZE)
            stored = await conn.fetchval("SELECT count(*) FROM player_actions_ts")
        finally:
            await conn.close()
    finally:
        pg.stop()
    return {"actions": stored, "bytes": size, "bytes_per_action": round(size / stored, 1), "insert_s": round(took, 1)}


async def timescale(actions: int, players: int, now: datetime) -> dict:
    with Server() as server:
        conn = Connection(server)
        await migrate(conn, compress_after_days=7)
        t0 = time.perf_counter()
        await conn.execute(INSERT, actions, now, float(players))
        took = time.perf_counter() - t0
        before = server.value("SELECT hypertable_size('player_actions_ts')")
        chunks = [r["c"] for r in server.rows("SELECT show_chunks('player_actions_ts')::text AS c")]
        t0 = time.perf_counter()
        for chunk in chunks:
            server.check([f"SELECT compress_chunk('{chunk}')"])
            print(f"  compressed {chunk}", flush=True)
        compress_s = time.perf_counter() - t0
        after = server.value("SELECT hypertable_size('player_actions_ts')")
        stored = server.value("SELECT count(*) FROM player_actions_ts")
    return {"actions": stored, "chunks": len(chunks), "bytes_uncompressed": before, "bytes_compressed": after,
            "bytes_per_action_uncompressed": round(before / stored, 1),
            "bytes_per_action_compressed": round(after / stored, 1), "ratio": round(before / after, 2),
            "insert_s": round(took, 1), "compress_s": round(compress_s, 1)}


async def run(actions: int, per_player: int) -> dict:
    players = max(1, actions // per_player)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="bench-compression-") as tmp:
        print(f"{actions:,} actions, up to {players:,} players over {DAYS} days: plain PostgreSQL ...", flush=True)
        base = await plain(actions, players, now, Path(tmp))
    print("TimescaleDB (PGlite) ...", flush=True)
    ts = await timescale(actions, players, now)
    return {"command": f"python -m bench.compression --actions {actions} --per-player {per_player}",
            "actions_per_player": per_player, "plain_postgresql": base,
            "timescaledb": ts, "compressed_over_plain": round(ts["bytes_per_action_compressed"] / base["bytes_per_action"], 3)}


def table(out: dict) -> str:
    base, ts = out["plain_postgresql"], out["timescaledb"]
    return "\n".join([
        f"{'raw actions, bytes per action (table + indexes)':<52}{'bytes':>8}"
        f"   ({base['actions']:,} actions, {out['actions_per_player']} per player)",
        f"{'plain PostgreSQL 15 (the baseline)':<52}{base['bytes_per_action']:>8.1f}",
        f"{'TimescaleDB 2.23, uncompressed':<52}{ts['bytes_per_action_uncompressed']:>8.1f}",
        f"{'TimescaleDB 2.23, every chunk compressed':<52}{ts['bytes_per_action_compressed']:>8.1f}"
        f"   ({ts['ratio']}x smaller than uncompressed, {out['compressed_over_plain']:.2f} of plain)",
    ])


def main() -> int:
    parser = cli.CommandParser(prog="python -m bench.compression", description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=300_000, help="actions generated (default 300,000)")
    parser.add_argument("--per-player", type=int, default=10,
                        help="actions per player on average (default 10, as bench.scale: 100M over 10M players)")
    args = parser.parse_args()
    if reason := unavailable():
        raise cli.UsageError(f"TimescaleDB (PGlite) unavailable: {reason}")
    out = asyncio.run(run(args.actions, args.per_player))
    print(table(out))
    results.save("compression", out)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m bench.compression"))

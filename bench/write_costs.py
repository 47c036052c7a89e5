"""What one action costs PostgreSQL on the write path, write transaction plus its share of the folds.

The write transaction (``services/ingest/store/writes.py``) appends and queues; the materializer's
folds (``store/fold.py``) later turn queued batches into aggregates. Moving work out of the
transaction does not remove it, so both count: the target is their sum per action, beside COPY of
the same rows into the same table on the same server. Rows are shaped like the ingest benchmark's
(100k players, four action types, event time within the current minute), committed in groups of
``group`` rows as the service's group commit does, then folded family by family.

Also reported: the size of every table the writes and folds fill, per action, so an aggregate can
be seen to be much smaller than the rows it summarises (or not).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import asyncpg

from services.ingest.actions import Row
from services.ingest.store import fold, partitions, writes

_TYPES = ("kill", "loot", "move", "reward_collection")
_SIZES = """
SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes,
       (SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i WHERE i.inhparent = c.oid)::bigint AS parts
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname NOT LIKE 'ingest\\_pending\\_%' AND c.relname <> 'schema_migrations'"""


def _rows(prefix: str, n: int, now: datetime, players: int) -> list[Row]:
    return [Row(now, f"{prefix}-p{i % players}", _TYPES[i % 4], float(i % 97), None, None) for i in range(n)]


async def measure(dsn: str, rows: int = 100_000, group: int = 5_000, rounds: int = 3, per_player: int = 1) -> dict:
    """Best-of-``rounds`` µs per action: COPY, the write transactions, each fold family, the sum.

    ``per_player``: actions each player has among the rows one fold takes (1: every action is a new
    player-hour and summary row for the folds, the sparse worst case; at about one action per player
    per minute it is the fold interval in minutes)."""
    players = max(1, rows // per_player)
    now = datetime.now(timezone.utc)
    conn = await asyncpg.connect(dsn)
    try:
        await partitions.ensure_window(conn, 86_400)
        hll = await fold.has_hll(conn)
        statements = writes.Statements.of([r["tablename"] for r in await conn.fetch(writes.FIND_QUEUES)])
        await fold.drain(conn)  # start from empty queues
        best: dict[str, float] = {}

        def keep(name: str, seconds: float) -> None:
            best[name] = min(best.get(name, float("inf")), seconds * 1e6 / rows)

        for r in range(rounds):
            data = _rows(f"wc{r}copy", rows, now, players)
            started = time.perf_counter()
            for s in range(0, rows, group):
                await conn.copy_records_to_table("player_actions_ts", records=data[s:s + group], columns=Row._fields)
            keep("COPY raw (the floor)", time.perf_counter() - started)
            data = _rows(f"wc{r}write", rows, now, players)
            started = time.perf_counter()
            for s in range(0, rows, group):
                await writes.write_group(conn, [writes.Batch(data[s:s + group])], statements=statements)
            keep("write transactions", time.perf_counter() - started)
            for family in fold.FAMILIES:
                started = time.perf_counter()
                while (await fold.fold(conn, family, max_batches=1_000, hll=hll)).batches:
                    pass
                keep(f"fold {family}", time.perf_counter() - started)
        sizes = {r["name"]: r["bytes"] + r["parts"] for r in await conn.fetch(_SIZES)}
        actions = await conn.fetchval("SELECT count(*) FROM player_actions_ts")
    finally:
        await conn.close()
    floor = best["COPY raw (the floor)"]
    total = best["write transactions"] + sum(v for k, v in best.items() if k.startswith("fold "))
    return {"rows": rows, "group": group, "hll": hll, "actions_per_player": per_player, "us_per_action": {k: round(v, 2) for k, v in best.items()},
            "write_plus_folds_us": round(total, 2), "over_copy": round(total / floor, 2),
            "bytes_per_action": {k: round(v / actions, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])
                                 if v > 16_384},
            "actions_stored": actions}


def table(out: dict) -> str:
    floor = out["us_per_action"]["COPY raw (the floor)"]
    lines = [f"{'PostgreSQL work per action':<30}{'µs':>8}{'x COPY':>8}   ({out['actions_per_player']} action(s) per "
             "player per fold)"]
    for k, v in out["us_per_action"].items():
        lines.append(f"{k:<30}{v:>8.2f}{v / floor:>8.2f}")
    lines.append(f"{'write + folds':<30}{out['write_plus_folds_us']:>8.2f}{out['over_copy']:>8.2f}"
                 f"   (target <= 12 µs; hll {'on' if out['hll'] else 'off: exact distinct players'})")
    lines.append("bytes per stored action, by table: " + ", ".join(
        f"{k} {v:g}" for k, v in out["bytes_per_action"].items()))
    return "\n".join(lines)

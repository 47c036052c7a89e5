"""What each write of the ingest statement costs PostgreSQL, per row, beside COPY.

The service's statement (``services/ingest/store/writes.py``) does, per committed group: the raw
insert, the event-id claim, the 1-minute and 1-hour rollup upserts (plain PostgreSQL only) and
the summary upsert. Each is run here alone, on the same rows and the same server, so the ratio of
the whole statement to COPY can be read off its parts. Rows are shaped like the ingest benchmark's
(one action per player per group, 100k players): every rollup key and summary row is a new one,
which is what makes the rollups cost about as much as the raw rows themselves.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import asyncpg

from services.ingest.actions import Row
from services.ingest.store import partitions, writes

_UNNEST = ("unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[]) "
           "AS t(time, player_id, action_type, value, metadata, event_id)")
_TYPES = ("kill", "loot", "move", "reward_collection")

# One statement per write, each exactly the shape the service's statement uses.
PARTS = {
    "raw INSERT": f"""INSERT INTO player_actions_ts (time, player_id, action_type, value, metadata, event_id)
        SELECT time, player_id, action_type, value, metadata::jsonb, event_id FROM {_UNNEST}""",
    "event-id claim": f"""INSERT INTO action_event_ids (player_id, event_id, time)
        SELECT player_id, event_id, time FROM {_UNNEST} ORDER BY 1, 2 ON CONFLICT DO NOTHING""",
    **{f"rollup {name}": f"""INSERT INTO {table} AS r (bucket, player_id, action_type, actions, value_sum, value_max)
        SELECT date_trunc('{unit}', time, 'UTC'), player_id, action_type, count(*), sum(value), max(value)
        FROM {_UNNEST} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (bucket, player_id, action_type) DO UPDATE SET actions = r.actions + EXCLUDED.actions,
            value_sum = r.value_sum + EXCLUDED.value_sum, value_max = greatest(r.value_max, EXCLUDED.value_max)"""
       for name, table, unit in (("1min", "action_stats_1min", "minute"), ("1h", "action_stats_1h", "hour"))},
    "summary": f"""INSERT INTO player_summary AS p (player_id, first_seen, last_seen, action_count, updated_at)
        SELECT player_id, min(time), max(time), count(*), now() FROM {_UNNEST} GROUP BY 1 ORDER BY 1
        ON CONFLICT (player_id) DO UPDATE SET first_seen = least(p.first_seen, EXCLUDED.first_seen),
            last_seen = greatest(p.last_seen, EXCLUDED.last_seen), action_count = p.action_count + EXCLUDED.action_count,
            updated_at = now()""",
}


def _rows(prefix: str, n: int, now: datetime) -> list[Row]:
    return [Row(now, f"{prefix}-p{i % 100_000}", _TYPES[i % 4], float(i % 97), None, f"e{i}") for i in range(n)]


def _columns(rows: list[Row]) -> list[list]:
    return [list(c) for c in zip(*rows)]


async def measure(dsn: str, rows: int = 20_000, rounds: int = 3) -> dict:
    """Best-of-``rounds`` µs per row for COPY, each part, and the whole statement."""
    now = datetime.now(timezone.utc)
    conn = await asyncpg.connect(dsn)
    try:
        await partitions.ensure_window(conn, 86_400)
        best: dict[str, float] = {}

        def keep(name: str, seconds: float) -> None:
            best[name] = min(best.get(name, float("inf")), seconds * 1e6 / rows)

        for r in range(rounds):
            data = _rows(f"wc{r}copy", rows, now)
            started = time.perf_counter()
            await conn.copy_records_to_table("player_actions_ts", records=data, columns=Row._fields)
            keep("COPY raw (the ceiling)", time.perf_counter() - started)
            for name, sql in PARTS.items():
                cols = _columns(_rows(f"wc{r}{name.split()[0]}", rows, now))
                started = time.perf_counter()
                await conn.execute(sql, *cols)
                keep(name, time.perf_counter() - started)
            data = _rows(f"wc{r}full", rows, now)
            started = time.perf_counter()
            await writes.write_group(conn, [data], rollups=True, want_touched=True)
            keep("whole statement", time.perf_counter() - started)
    finally:
        await conn.close()
    ceiling = best["COPY raw (the ceiling)"]
    parts = sum(v for k, v in best.items() if k in PARTS)
    return {"rows_per_statement": rows, "us_per_row": {k: round(v, 2) for k, v in best.items()},
            "sum_of_parts_us": round(parts, 2), "copy_over_sum_of_parts": round(ceiling / parts, 3),
            "copy_over_whole_statement": round(ceiling / best["whole statement"], 3)}


def table(out: dict) -> str:
    ceiling = out["us_per_row"]["COPY raw (the ceiling)"]
    lines = [f"{'write (PostgreSQL, per row)':<28}{'µs/row':>9}{'x COPY':>8}"]
    for k, v in out["us_per_row"].items():
        lines.append(f"{k:<28}{v:>9.2f}{v / ceiling:>8.2f}")
    lines.append(f"sum of the parts: {out['sum_of_parts_us']:.2f} µs/row -> at best "
                 f"{out['copy_over_sum_of_parts']:.2f} of COPY before any gRPC or Python cost")
    return "\n".join(lines)

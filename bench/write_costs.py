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

import os
import time
from datetime import datetime, timezone
from pathlib import Path

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


class _BackendClock:
    """Wall time and the server backend's own CPU time (user + system, from /proc: the benchmark
    runs beside its PostgreSQL), so a busy machine inflates neither side of a ratio."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._tick = os.sysconf("SC_CLK_TCK")

    def now(self) -> tuple[float, float]:
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return time.perf_counter(), (int(fields[11]) + int(fields[12])) / self._tick


async def measure(dsn: str, rows: int = 100_000, group: int = 5_000, rounds: int = 3, per_player: int = 1,
                  known: bool = False) -> dict:
    """Best-of-``rounds`` µs per action (wall, and the backend's CPU): COPY, the write transactions,
    each fold family, the sum.

    ``per_player``: actions each player has among the rows one fold takes (at about one action per
    player per minute and a fold every second or so, 1). ``known``: the players already have an
    hour row (a warm-up round is folded first), as in steady traffic, where a player-hour is new
    once an hour; otherwise every action is a new player, the worst case for the folds."""
    players = max(1, rows // per_player)
    now = datetime.now(timezone.utc)
    conn = await asyncpg.connect(dsn)
    try:
        clock = _BackendClock(await conn.fetchval("SELECT pg_backend_pid()"))
        await partitions.ensure_window(conn, 86_400)
        hll = await fold.has_hll(conn)
        statements = writes.Statements.of([r["tablename"] for r in await conn.fetch(writes.FIND_QUEUES)])
        best: dict[str, tuple[float, float]] = {}

        def keep(name: str, started: tuple[float, float]) -> None:
            end = clock.now()
            wall, cpu = ((end[i] - started[i]) * 1e6 / rows for i in (0, 1))
            was = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(was[0], wall), min(was[1], cpu))

        async def write(prefix: str) -> None:
            data = _rows(prefix, rows, now, players)
            for s in range(0, rows, group):
                await writes.write_group(conn, [writes.Batch(data[s:s + group])], statements=statements)

        tag = f"wc{per_player}{'k' if known else 'n'}{time.monotonic_ns()}"
        if known:
            await write(f"{tag}known")
        await fold.drain(conn)  # start from empty queues
        for r in range(rounds):
            data = _rows(f"{tag}{r}copy", rows, now, players)
            started = clock.now()
            for s in range(0, rows, group):
                await conn.copy_records_to_table("player_actions_ts", records=data[s:s + group], columns=Row._fields)
            keep("COPY raw (the floor)", started)
            started = clock.now()
            await write(f"{tag}known" if known else f"{tag}{r}write")
            keep("write transactions", started)
            for family in fold.FAMILIES:
                started = clock.now()
                while (await fold.fold(conn, family, max_batches=1_000, hll=hll)).batches:
                    pass
                keep(f"fold {family}", started)
        sizes = {r["name"]: r["bytes"] + r["parts"] for r in await conn.fetch(_SIZES)}
        actions = await conn.fetchval("SELECT count(*) FROM player_actions_ts")
    finally:
        await conn.close()
    out = {"rows": rows, "group": group, "hll": hll, "actions_per_player": per_player, "known_players": known}
    for i, clock_name in enumerate(("wall", "cpu")):
        floor = best["COPY raw (the floor)"][i]
        total = best["write transactions"][i] + sum(v[i] for k, v in best.items() if k.startswith("fold "))
        out[clock_name] = {"us_per_action": {k: round(v[i], 2) for k, v in best.items()},
                           "write_plus_folds_us": round(total, 2), "over_copy": round(total / floor, 2)}
    out["bytes_per_action"] = {k: round(v / actions, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])
                               if v > 16_384}
    out["actions_stored"] = actions
    return out


def table(out: dict) -> str:
    wall, cpu = out["wall"], out["cpu"]
    floor = wall["us_per_action"]["COPY raw (the floor)"]
    who = "known players" if out["known_players"] else "new players"
    lines = [f"{'PostgreSQL work per action':<30}{'wall µs':>9}{'x COPY':>8}{'cpu µs':>9}{'x COPY':>8}   "
             f"({out['actions_per_player']} action(s) per player per fold, {who})"]
    cpu_floor = cpu["us_per_action"]["COPY raw (the floor)"]
    for k, v in wall["us_per_action"].items():
        c = cpu["us_per_action"][k]
        lines.append(f"{k:<30}{v:>9.2f}{v / floor:>8.2f}{c:>9.2f}{c / cpu_floor:>8.2f}")
    lines.append(f"{'write + folds':<30}{wall['write_plus_folds_us']:>9.2f}{wall['over_copy']:>8.2f}"
                 f"{cpu['write_plus_folds_us']:>9.2f}{cpu['over_copy']:>8.2f}"
                 f"   (target <= 12 µs; hll {'on' if out['hll'] else 'off: exact distinct players'})")
    lines.append("bytes per stored action, by table: " + ", ".join(
        f"{k} {v:g}" for k, v in out["bytes_per_action"].items()))
    return "\n".join(lines)

"""``python -m services.ingest import-sqlite``: the seed's move from the old SQLite BanHammer.

    SOURCE_DB_PATH=./banhammer.db TIMESCALEDB_URL=postgresql://... \\
        python -m services.ingest import-sqlite [--batch-size 10000] [--table player_actions]

Reads the old actions table in rowid order, ``--batch-size`` rows at a time (the seed's default,
10,000; lower it if memory is short), and commits each batch through the service's own write
statement. Each row's event id is ``sqlite-<rowid>``, so a re-run (after a crash, or to pick up
rows added since) skips what is already stored instead of doubling it; ``player_summary`` and the
rollups are kept exactly as for live traffic (on TimescaleDB the continuous aggregates are
refreshed over the imported range at the end). Rows older than the retention period are skipped
(they would be dropped at once); rows that cannot be stored (no player, a NaN value, a time that
does not parse, ...) are counted, the first few logged, and do not stop the import. Detection
rules do not run on history. Progress goes to the log (JSON lines on stderr: redirect it to the
seed's ``migration.log``); the totals are printed at the end.

The old schema is not written down anywhere, so columns are found by name (first match wins):
player ``player_id|player|user_id``, type ``action_type|action|type``, value ``value|amount|score``
(absent: 0), time ``timestamp|time|created_at|ts`` (ISO text, or epoch seconds or milliseconds;
naive times are UTC; absent: the import time), metadata ``metadata|details|data|extra`` (JSON text).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sqlite3
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import asyncpg

from services.runtime.errors import DomainError, InvalidArgument

from .actions import RawAction, Row, TimeWindow, now_us, validate
from .config import IngestConfig
from .store import IngestStore, run_migrations
from .store.writes import Batch

log = logging.getLogger("banhammer.ingest.sqlite_import")

TABLES = ("player_actions", "actions", "player_action")
COLUMNS = {
    "player_id": ("player_id", "player", "user_id"),
    "action_type": ("action_type", "action", "type"),
    "value": ("value", "amount", "score"),
    "time": ("timestamp", "time", "created_at", "ts"),
    "metadata": ("metadata", "details", "data", "extra"),
}
REQUIRED = ("player_id", "action_type")
_LOGGED_PROBLEMS = 20


class SourceError(Exception):
    """The source database cannot be imported (missing file, table or column)."""


@dataclass
class Totals:
    read: int = 0
    imported: int = 0
    already_present: int = 0
    skipped_too_old: int = 0
    skipped_invalid: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Source:
    table: str
    columns: dict[str, str]  # our field -> their column


def inspect(db: sqlite3.Connection, table: str | None = None) -> Source:
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    candidates = (table,) if table else TABLES
    found = next((t for t in candidates if t in names), None)
    if found is None:
        raise SourceError(f"no table {' or '.join(candidates)} in the source (tables: {', '.join(sorted(names)) or 'none'})")
    present = {r[1].lower(): r[1] for r in db.execute(f'PRAGMA table_info("{found}")')}
    columns = {}
    for field, aliases in COLUMNS.items():
        match = next((present[a] for a in aliases if a in present), None)
        if match is not None:
            columns[field] = match
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise SourceError(f"table {found} has no column for {', '.join(missing)} (columns: {', '.join(present.values())})")
    return Source(found, columns)


def parse_time_us(value: Any) -> int | None:
    """Microseconds since the epoch from what SQLite apps store; None when it does not parse."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        seconds = value / 1000 if abs(value) > 1e11 else value  # epoch milliseconds vs seconds
        return int(seconds * 1_000_000)
    text = str(value).strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        try:
            return parse_time_us(float(text))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000)


def _metadata(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {"raw": str(value)[:1024]}  # kept, not lost: the old app stored free text here
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _raw(source: Source, rowid: int, row: sqlite3.Row, fallback_us: int) -> RawAction | None:
    c = source.columns
    t = parse_time_us(row[c["time"]]) if "time" in c else fallback_us
    if t is None:
        return None
    value = row[c["value"]] if "value" in c else 0.0
    try:
        value = float(value if value is not None else 0.0)
    except (TypeError, ValueError):
        return None
    return RawAction(str(row[c["player_id"]] or ""), str(row[c["action_type"]] or ""), value,
                     _metadata(row[c["metadata"]]) if "metadata" in c else None, t, f"sqlite-{rowid}")


class _Problems:
    def __init__(self) -> None:
        self.logged = 0

    def note(self, rowid: int, reason: str) -> None:
        if self.logged < _LOGGED_PROBLEMS:
            log.warning("source row skipped", extra={"rowid": rowid, "reason": reason})
            self.logged += 1


def _validated(raws: list[tuple[int, RawAction]], window: TimeWindow, totals: Totals, problems: _Problems) -> list[Row]:
    """Rows to store; a batch with a bad row is re-checked row by row so only that row is skipped."""
    if not raws:
        return []
    try:
        return validate([r for _, r in raws], window, now=now_us())
    except InvalidArgument:
        pass
    rows = []
    for rowid, raw in raws:
        try:
            rows.extend(validate([raw], window, indexed=False, now=now_us()))
        except InvalidArgument as exc:
            reason = "; ".join(f"{v.field} {v.description}" for v in exc.violations)
            if "late limit" in reason:
                totals.skipped_too_old += 1
            else:
                totals.skipped_invalid += 1
                problems.note(rowid, reason)
    return rows


async def run_import(conf: IngestConfig, source_path: str, *, batch_size: int = 10_000,
                     table: str | None = None) -> Totals:
    path = Path(source_path)
    if not path.is_file():
        raise SourceError(f"source database {path} not found")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read-only: the old database is never changed
    db.row_factory = sqlite3.Row
    try:
        source = inspect(db, table)
        log.info("importing", extra={"source": str(path), "table": source.table, "columns": source.columns,
                                     "batch_size": batch_size})
        await run_migrations(conf.database_url, conf.compress_after_days)
        store = IngestStore(conf.database_url, pool_size=2, late_seconds=conf.late_limit_seconds)
        await store.open()
        try:
            totals = await _copy(db, source, store, batch_size, conf.retention_days)
        finally:
            await store.close()
    finally:
        db.close()
    return totals


async def _copy(db: sqlite3.Connection, source: Source, store: IngestStore, batch_size: int,
                retention_days: int) -> Totals:
    totals, problems = Totals(), _Problems()
    window = TimeWindow.of_seconds(retention_days * 86400.0, 300.0)
    columns = ", ".join(f'"{c}"' for c in source.columns.values())
    query = f'SELECT rowid AS _rowid, {columns} FROM "{source.table}" WHERE rowid > ? ORDER BY rowid LIMIT ?'
    started = time.monotonic()
    first = last = None
    after = 0
    while True:
        batch = db.execute(query, (after, batch_size)).fetchall()
        if not batch:
            break
        after = batch[-1]["_rowid"]
        totals.read += len(batch)
        fallback = now_us()
        raws = []
        for row in batch:
            raw = _raw(source, row["_rowid"], row, fallback)
            if raw is None:
                totals.skipped_invalid += 1
                problems.note(row["_rowid"], "value or time does not parse")
            else:
                raws.append((row["_rowid"], raw))
        rows = _validated(raws, window, totals, problems)
        if rows:
            result = await store.write([Batch(rows)])
            outcome = result.outcomes[0]
            if isinstance(outcome, BaseException):
                raise outcome
            totals.already_present += outcome.duplicates
            totals.imported += len(rows) - outcome.duplicates
            lo, hi = min(r.time for r in rows), max(r.time for r in rows)
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
        log.info("import progress", extra={**asdict(totals), "last_rowid": after,
                                            "rows_per_s": round(totals.read / max(time.monotonic() - started, 1e-6))})
    if store.timescale and first is not None:
        await store.refresh_aggregates(first, last)
    totals.seconds = round(time.monotonic() - started, 3)
    return totals


async def import_command(conf: IngestConfig, args: list[str]) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m services.ingest import-sqlite",
                                     description="Import the old SQLite BanHammer database (see the module docs).")
    parser.add_argument("--source", default=os.environ.get("SOURCE_DB_PATH", "./banhammer.db"),
                        help="SQLite file (default: $SOURCE_DB_PATH or ./banhammer.db)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="rows per transaction (default 10000)")
    parser.add_argument("--table", default=None, help=f"actions table (default: first of {', '.join(TABLES)})")
    opts = parser.parse_args(args)
    if not 1 <= opts.batch_size <= 10_000:
        parser.error("--batch-size must be 1..10000")
    try:
        totals = await run_import(conf, opts.source, batch_size=opts.batch_size, table=opts.table)
    except SourceError as exc:
        print(f"cannot import: {exc}")
        return 2
    except (DomainError, OSError, asyncpg.PostgresError) as exc:  # e.g. the database went away
        reason = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        print(f"import interrupted: {reason}; every committed batch stays committed: run the same "
              "command again to resume (rows already imported are skipped)")
        return 1
    print(json.dumps(asdict(totals)))
    return 0

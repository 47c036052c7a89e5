"""Player actions: the limits from banhammer.common.v1.PlayerAction, and batch validation.

A batch is validated whole before anything is queued, so one bad item rejects the batch and
nothing of it is written. Field paths name the item: ``actions[3].value``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from services.runtime.errors import FieldViolation, InvalidArgument

PLAYER_ID_MAX = 128
ACTION_TYPE_MAX = 64
EVENT_ID_MAX = 64
METADATA_MAX_BYTES = 4096
METADATA_MAX_DEPTH = 8
BATCH_MAX = 10_000
# |value| bound: sums over billions of actions stay far from float8 overflow (1e308), so no
# aggregate of accepted values can fail, and 1e15 still holds any game's currency in cents.
VALUE_MAX = 1e15
PRODUCER_ID_MAX = 64
_PRODUCER_ID = re.compile(r"[A-Za-z0-9._:/-]+")
EPOCH_MAX = 2**63 - 1
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # json.dumps writes U+0000 as \u0000
_MAX_REPORTED = 50  # field violations reported per rejected batch

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class RawAction(NamedTuple):
    """An action as decoded from the wire, not yet validated."""

    player_id: str
    action_type: str
    value: float
    metadata: Any  # JSON-like Python value (dict), or None when absent; TooDeep when over the limit
    time_us: int | None  # microseconds since the epoch; None: server receive time
    event_id: str


class Row(NamedTuple):
    """A validated action, in player_actions_ts column order."""

    time: datetime
    player_id: str
    action_type: str
    value: float
    metadata: str | None  # serialized JSON
    event_id: str | None


class BatchKey(NamedTuple):
    """A batch's idempotency key (ingest.proto ``ProducerKey`` + ``sequence``) and its content digest."""

    producer_id: str
    epoch: int
    sequence: int  # uint64
    digest: str  # hex; tells a resend (same actions) from a reused key (other actions)


class TooDeep:
    """Stands in for metadata nested beyond METADATA_MAX_DEPTH (the decoder stops there)."""


@dataclass(frozen=True)
class TimeWindow:
    late_us: int
    future_us: int

    @classmethod
    def of_seconds(cls, late: float, future: float) -> "TimeWindow":
        return cls(int(late * 1e6), int(future * 1e6))


def now_us() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1_000_000)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _text(value: str, limit: int, field: str, out: list[FieldViolation], required: bool) -> None:
    if not value:
        if required:
            out.append(FieldViolation(field, "must not be empty"))
        return
    if len(value) > limit or len(value.encode()) > limit:
        out.append(FieldViolation(field, f"must be at most {limit} bytes"))
    elif "\x00" in value:
        out.append(FieldViolation(field, "must not contain NUL characters"))


def _metadata(meta: Any, field: str, out: list[FieldViolation]) -> str | None:
    if meta is None:
        return None
    if isinstance(meta, TooDeep):
        out.append(FieldViolation(field, f"nesting depth must be at most {METADATA_MAX_DEPTH}"))
        return None
    try:
        text = json.dumps(meta, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        out.append(FieldViolation(field, "numbers must be finite (NaN and Infinity are not JSON)"))
        return None
    if len(text.encode()) > METADATA_MAX_BYTES:
        out.append(FieldViolation(field, f"serialized JSON must be at most {METADATA_MAX_BYTES} bytes"))
        return None
    if "\\u0000" in text and _ESCAPED_NUL.search(text):  # jsonb cannot store U+0000
        out.append(FieldViolation(field, "must not contain NUL characters"))
        return None
    return text


def validate(items: list[RawAction], window: TimeWindow, prefix: str = "actions",
             indexed: bool = True, now: int | None = None) -> list[Row]:
    """Validate a batch; returns the rows to store or raises InvalidArgument naming every bad field."""
    if not items:
        raise InvalidArgument.field(prefix, "must contain at least one action")
    if len(items) > BATCH_MAX:
        raise InvalidArgument.field(prefix, f"must contain at most {BATCH_MAX} actions")
    now = now_us() if now is None else now
    oldest, newest = now - window.late_us, now + window.future_us
    received = from_us(now)
    rows: list[Row] = []
    bad: list[FieldViolation] = []
    for i, a in enumerate(items):
        p = f"{prefix}[{i}]" if indexed else prefix
        before = len(bad)
        _text(a.player_id, PLAYER_ID_MAX, f"{p}.player_id", bad, True)
        _text(a.action_type, ACTION_TYPE_MAX, f"{p}.action_type", bad, True)
        _text(a.event_id, EVENT_ID_MAX, f"{p}.event_id", bad, False)
        if not math.isfinite(a.value):
            bad.append(FieldViolation(f"{p}.value", "must be finite (NaN and Infinity are rejected)"))
        elif abs(a.value) > VALUE_MAX:
            bad.append(FieldViolation(f"{p}.value", f"must be within ±{VALUE_MAX:.0e}"))
        if a.time_us is None:
            at = received
        elif a.time_us < oldest:
            bad.append(FieldViolation(f"{p}.time", f"is older than the late limit ({window.late_us / 1e6:g} s)"))
        elif a.time_us > newest:
            bad.append(FieldViolation(f"{p}.time", f"is ahead of server time by more than {window.future_us / 1e6:g} s"))
        else:
            at = from_us(a.time_us)
        meta = _metadata(a.metadata, f"{p}.metadata", bad)
        if len(bad) >= _MAX_REPORTED:
            break
        if len(bad) == before:
            rows.append(Row(at, a.player_id, a.action_type, float(a.value), meta, a.event_id or None))
    if bad:
        raise InvalidArgument(bad[:_MAX_REPORTED])
    return rows


class Columns(NamedTuple):
    """An ``ActionColumns`` batch as plain lists (see ingest.proto)."""

    players: list[str]
    player: list[int]
    action_types: list[str]
    action_type: list[int]
    value: list[float]
    time_us: list[int]
    event_id: list[str]


def validate_columns(c: Columns, window: TimeWindow, field: str = "columns", now: int | None = None) -> list[Row]:
    """Validate a columnar batch: the same rules as ``validate``, but each distinct player id and
    action type is checked once, not once per action. Raises InvalidArgument naming every bad field
    (``columns.players[2]``, ``columns.value[7]``)."""
    n = len(c.player)
    bad: list[FieldViolation] = []
    if not n:
        bad.append(FieldViolation(f"{field}.player", "must contain at least one action"))
    elif n > BATCH_MAX:
        bad.append(FieldViolation(f"{field}.player", f"must contain at most {BATCH_MAX} actions"))
    for name, column in (("action_type", c.action_type), ("value", c.value)):
        if len(column) != n:
            bad.append(FieldViolation(f"{field}.{name}", f"must have one entry per action ({n}), has {len(column)}"))
    for name, column in (("time_us", c.time_us), ("event_id", c.event_id)):
        if column and len(column) != n:
            bad.append(FieldViolation(f"{field}.{name}", f"must be empty or have one entry per action ({n}), "
                                                         f"has {len(column)}"))
    for name, values, limit in (("players", c.players, PLAYER_ID_MAX), ("action_types", c.action_types, ACTION_TYPE_MAX)):
        if len(values) > BATCH_MAX:
            bad.append(FieldViolation(f"{field}.{name}", f"must have at most {BATCH_MAX} entries"))
            continue
        for i, v in enumerate(values):
            _text(v, limit, f"{field}.{name}[{i}]", bad, True)
    for name, index, size in (("player", c.player, len(c.players)), ("action_type", c.action_type, len(c.action_types))):
        if index and max(index) >= size:
            bad.append(FieldViolation(f"{field}.{name}", f"indexes must be below the number of {name}s ({size})"))
    if bad:
        raise InvalidArgument(bad[:_MAX_REPORTED])
    for i, v in enumerate(c.value):
        if not math.isfinite(v) or abs(v) > VALUE_MAX:
            bad.append(FieldViolation(f"{field}.value[{i}]", f"must be finite and within ±{VALUE_MAX:.0e}"))
            if len(bad) >= _MAX_REPORTED:
                break
    now = now_us() if now is None else now
    if c.time_us:
        oldest, newest = now - window.late_us, now + window.future_us
        for i, at in enumerate(c.time_us):
            if not oldest <= at <= newest:
                bad.append(FieldViolation(f"{field}.time_us[{i}]", f"must be within the late ({window.late_us / 1e6:g} s) "
                                                                   f"and future ({window.future_us / 1e6:g} s) limits"))
                if len(bad) >= _MAX_REPORTED:
                    break
        times = [from_us(at) for at in c.time_us]
    else:
        times = [from_us(now)] * n
    ids: list[str | None] = [None] * n
    if c.event_id:
        for i, e in enumerate(c.event_id):
            if e:
                _text(e, EVENT_ID_MAX, f"{field}.event_id[{i}]", bad, False)
                ids[i] = e
    if bad:
        raise InvalidArgument(bad[:_MAX_REPORTED])
    players, types = c.players, c.action_types
    return [Row(at, players[p], types[t], float(v), None, e)
            for at, p, t, v, e in zip(times, c.player, c.action_type, c.value, ids)]


def digest_actions(items: list[RawAction], rows: list[Row]) -> str:
    """What the client sent (its times, not the server's), for a batch key's resend check."""
    h = hashlib.blake2b(digest_size=16)
    for a, r in zip(items, rows):
        h.update(f"{a.player_id}\x1f{a.action_type}\x1f{a.value!r}\x1f{a.time_us}\x1f{a.event_id}\x1f{r.metadata}\x1e"
                 .encode())
    return h.hexdigest()


def digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def batch_key(producer_id: str, epoch: int, sequence: int, digest: str, field: str = "producer") -> BatchKey:
    """Validate a producer key (see ingest.proto ProducerKey)."""
    bad = []
    if not producer_id or len(producer_id) > PRODUCER_ID_MAX or not _PRODUCER_ID.fullmatch(producer_id):
        bad.append(FieldViolation(f"{field}.producer_id", f"must be 1..{PRODUCER_ID_MAX} characters of [A-Za-z0-9._:/-]"))
    if epoch > EPOCH_MAX:
        bad.append(FieldViolation(f"{field}.epoch", "must be at most 2^63-1"))
    if bad:
        raise InvalidArgument(bad)
    return BatchKey(producer_id, epoch, sequence, digest)


def row_bytes(row: Row) -> int:
    """Rough memory cost of a queued row, for the queue's byte bound."""
    return 200 + len(row.player_id) + len(row.action_type) + len(row.metadata or "") + len(row.event_id or "")

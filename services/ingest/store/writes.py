"""The write transaction: only what an acknowledgement needs.

One transaction commits a group of batches (group commit):

1. **Batch keys** (batches with a producer key, see ``ProducerKey`` in ingest.proto): one statement
   raises each producer's epoch (fencing lower ones), claims each batch's (producer, epoch,
   sequence) in ``ingest_producer_batches`` and draws the group's ``batch_id``. A key already
   there is a resend (``duplicate``) when its digest matches, a client bug when it does not.
2. **Event ids** (only when a kept batch carries per-action ``event_id``): claimed in
   ``action_event_ids``; the first occurrence in the group wins, ON CONFLICT DO NOTHING waits for a
   concurrent writer of the same key, so exactly one of two racing retries stores the action.
3. **Rows**: appended to ``player_actions_ts`` stamped with the group's ``batch_id``, by COPY when
   the group is large enough to repay its extra round trip, else one ``unnest`` INSERT.
4. **Queues**: one row per transaction in every ``ingest_pending_<family>`` table; the
   materializer folds the aggregates from those batch ids later, exactly once.

Nothing per action is updated in place: rollups and summaries no longer sit in the write path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg

from services.runtime.errors import FailedPrecondition

from ..actions import BatchKey, Row

COLUMNS = ("time", "player_id", "action_type", "value", "metadata", "event_id", "batch_id")

NEXT_BATCH_ID = "SELECT nextval('ingest_batch_id_seq')"

# Keys of the first occurrence of each batch key in the group. A lower epoch than the producer's
# is fenced; the highest in the group raises it. The batch id comes from a one-row CTE so it is
# drawn once per statement, not once per output row.
CLAIM_BATCHES = """
WITH input AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::int[])
        AS t(ord, producer_id, epoch, seq, digest, rows)
), fence AS (
    INSERT INTO ingest_producers AS p (producer_id, epoch)
    SELECT producer_id, max(epoch) FROM input GROUP BY producer_id ORDER BY producer_id
    ON CONFLICT (producer_id) DO UPDATE SET epoch = greatest(p.epoch, EXCLUDED.epoch), updated_at = now()
    RETURNING producer_id, epoch
), claimed AS (
    INSERT INTO ingest_producer_batches (producer_id, epoch, sequence, digest, rows)
    SELECT i.producer_id, i.epoch, i.seq, decode(i.digest, 'hex'), i.rows
    FROM input i JOIN fence f ON f.producer_id = i.producer_id AND f.epoch = i.epoch
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
    RETURNING producer_id, epoch, sequence
), bid AS (SELECT nextval('ingest_batch_id_seq') AS batch_id)
SELECT i.ord, f.epoch AS current_epoch, c.sequence IS NOT NULL AS claimed,
       encode(b.digest, 'hex') AS stored_digest, (SELECT batch_id FROM bid) AS batch_id
FROM input i
JOIN fence f ON f.producer_id = i.producer_id
LEFT JOIN claimed c ON c.producer_id = i.producer_id AND c.epoch = i.epoch AND c.sequence = i.seq
LEFT JOIN ingest_producer_batches b
       ON c.sequence IS NULL AND b.producer_id = i.producer_id AND b.epoch = i.epoch AND b.sequence = i.seq
ORDER BY i.ord"""

CLAIM_EVENT_IDS = """
INSERT INTO action_event_ids (player_id, event_id, time)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ORDER BY 1, 2
ON CONFLICT DO NOTHING
RETURNING player_id, event_id"""

INSERT_ROWS = """
INSERT INTO player_actions_ts (time, player_id, action_type, value, metadata, event_id, batch_id)
SELECT t.time, t.player_id, t.action_type, t.value, t.metadata::jsonb, t.event_id, $7
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[])
    AS t(time, player_id, action_type, value, metadata, event_id)"""

FIND_QUEUES = """
SELECT tablename FROM pg_tables
WHERE schemaname = current_schema() AND tablename LIKE 'ingest\\_pending\\_%' ORDER BY tablename"""


# The one-statement path (a group with no batch key, small enough to skip COPY: e.g. a lone
# RecordAction): batch id, event-id claims, rows and queue rows in one round trip, so the caller
# waits for one statement and its commit. Returns the batch id and the ordinals of rows not kept.
_ONE_INPUT = """
input AS (
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[])
        WITH ORDINALITY AS t(time, player_id, action_type, value, metadata, event_id, ord)
), bid AS (SELECT nextval('ingest_batch_id_seq') AS batch_id)"""
_ONE_CLAIM = """,
firsts AS (
    SELECT DISTINCT ON (player_id, event_id) * FROM input WHERE event_id IS NOT NULL
    ORDER BY player_id, event_id, ord
), claimed AS (
    INSERT INTO action_event_ids (player_id, event_id, time)
    SELECT player_id, event_id, time FROM firsts ORDER BY player_id, event_id
    ON CONFLICT DO NOTHING
    RETURNING player_id, event_id
), kept AS (
    SELECT * FROM input WHERE event_id IS NULL
    UNION ALL
    SELECT f.* FROM firsts f JOIN claimed c ON c.player_id = f.player_id AND c.event_id = f.event_id
)"""
_ONE_KEEP_ALL = """,
kept AS (SELECT * FROM input)"""
_ONE_ROWS = """,
raw AS (
    INSERT INTO player_actions_ts (time, player_id, action_type, value, metadata, event_id, batch_id)
    SELECT time, player_id, action_type, value, metadata::jsonb, event_id, (SELECT batch_id FROM bid) FROM kept
)"""
_ONE_QUEUE = """,
q{i} AS (
    INSERT INTO {name} (batch_id, rows, min_time, max_time)
    SELECT (SELECT batch_id FROM bid), count(*), min(time), max(time) FROM kept HAVING count(*) > 0
)"""
_ONE_RESULT = """
SELECT (SELECT batch_id FROM bid) AS batch_id,
       (SELECT array_agg(ord) FROM input WHERE ord NOT IN (SELECT ord FROM kept)) AS dropped"""


def one_statement(queues: Sequence[str], *, claim: bool) -> str:
    parts = [_ONE_INPUT, _ONE_CLAIM if claim else _ONE_KEEP_ALL, _ONE_ROWS,
             *(_ONE_QUEUE.format(i=i, name=name) for i, name in enumerate(queues))]
    return "WITH" + "".join(parts) + _ONE_RESULT


class Statements(NamedTuple):
    """The statements that depend on which queue tables exist (read from the catalog at start)."""

    enqueue: str | None
    one: dict[bool, str]  # claim event ids? -> the one-statement path

    @classmethod
    def of(cls, queues: Sequence[str]) -> "Statements":
        return cls(enqueue_statement(queues), {c: one_statement(queues, claim=c) for c in (False, True)})


def enqueue_statement(queues: Sequence[str]) -> str | None:
    """One statement inserting the transaction's row into every queue table (names from the catalog)."""
    if not queues:
        return None
    parts = [f"q{i} AS (INSERT INTO {name} (batch_id, rows, min_time, max_time) VALUES ($1, $2, $3, $4))"
             for i, name in enumerate(queues)]
    return "WITH " + ", ".join(parts) + " SELECT 1"


class Batch(NamedTuple):
    rows: Sequence[Row]
    key: BatchKey | None = None


class Outcome(NamedTuple):
    duplicates: int  # actions not stored: event ids already stored, or all of them when `duplicate`
    duplicate: bool = False  # the batch key was already committed: nothing was written


class GroupResult(NamedTuple):
    outcomes: list[Outcome | BaseException]  # per batch, in input order
    kept: list[Row]  # the rows this transaction stored (what detection evaluates)
    batch_id: int | None = None


def _signed(sequence: int) -> int:
    """The proto's uint64 as the bigint it is stored as (two's complement)."""
    return sequence - (1 << 64) if sequence >= 1 << 63 else sequence


def _resend_or_reuse(key: BatchKey, size: int, stored: str | None) -> Outcome | BaseException:
    # stored is None when a concurrent transaction committed the key after this statement's
    # snapshot: the key is taken either way, and that copy carried the same key.
    if stored is None or stored == key.digest:
        return Outcome(size, True)
    return FailedPrecondition(f"batch {key.sequence} of producer {key.producer_id!r} (epoch {key.epoch}) was "
                              "already committed with different actions: a batch key names one batch")


async def _claim_batches(conn, batches: Sequence[Batch], outcomes: list) -> int:
    """Claim the keyed batches' keys (setting ``outcomes`` of the refused ones); returns the batch id."""
    first: dict[tuple, int] = {}
    ords, pids, epochs, seqs, digests, sizes = [], [], [], [], [], []
    for i, b in enumerate(batches):
        if b.key is None:
            continue
        k = (b.key.producer_id, b.key.epoch, b.key.sequence)
        if k in first:  # the same key twice in one group: the first copy decides
            outcomes[i] = _resend_or_reuse(b.key, len(b.rows), batches[first[k]].key.digest)
            continue
        first[k] = i
        ords.append(i)
        pids.append(b.key.producer_id)
        epochs.append(b.key.epoch)
        seqs.append(_signed(b.key.sequence))
        digests.append(b.key.digest)
        sizes.append(len(b.rows))
    records = await conn.fetch(CLAIM_BATCHES, ords, pids, epochs, seqs, digests, sizes)
    for r in records:
        i = r["ord"]
        key = batches[i].key
        if r["claimed"]:
            continue
        if r["current_epoch"] > key.epoch:
            outcomes[i] = FailedPrecondition(
                f"producer {key.producer_id!r} is fenced at epoch {key.epoch}: epoch {r['current_epoch']} "
                "has committed since (a newer incarnation of this producer is running)")
        else:
            outcomes[i] = _resend_or_reuse(key, len(batches[i].rows), r["stored_digest"])
    return records[0]["batch_id"]


async def _claim_event_ids(conn, rows: list[Row]) -> set[tuple[str, str]]:
    """Claim the event ids of ``rows`` (first occurrence each); returns the (player, event id) claimed."""
    first: dict[tuple[str, str], Row] = {}
    for r in rows:
        if r.event_id is not None:
            first.setdefault((r.player_id, r.event_id), r)
    if not first:
        return set()
    return {(r["player_id"], r["event_id"]) for r in await conn.fetch(
        CLAIM_EVENT_IDS, [k[0] for k in first], [k[1] for k in first], [r.time for r in first.values()])}


async def _append(conn, rows: list[Row], batch_id: int, copy_min_rows: int) -> None:
    if copy_min_rows and len(rows) >= copy_min_rows:
        await conn.copy_records_to_table("player_actions_ts", columns=COLUMNS,
                                         records=[(*r, batch_id) for r in rows])
        return
    await conn.execute(INSERT_ROWS, [r.time for r in rows], [r.player_id for r in rows],
                       [r.action_type for r in rows], [r.value for r in rows], [r.metadata for r in rows],
                       [r.event_id for r in rows], batch_id)


async def write_group(conn: asyncpg.Connection, batches: Sequence[Batch], *, statements: Statements,
                      copy_min_rows: int = 64) -> GroupResult:
    """Commit ``batches`` in one transaction (see the module doc)."""
    size = sum(len(b.rows) for b in batches)
    if all(b.key is None for b in batches) and not (copy_min_rows and size >= copy_min_rows):
        return await _write_one_statement(conn, batches, statements)
    outcomes: list[Outcome | BaseException | None] = [None] * len(batches)
    async with conn.transaction():
        if any(b.key is not None for b in batches):
            batch_id = await _claim_batches(conn, batches, outcomes)
        else:
            batch_id = await conn.fetchval(NEXT_BATCH_ID)
        live = [i for i, o in enumerate(outcomes) if o is None]
        kept: list[Row] = []
        if any(r.event_id is not None for i in live for r in batches[i].rows):
            # One claim for the group; walking it in order, the first occurrence keeps the action.
            claimed = await _claim_event_ids(conn, [r for i in live for r in batches[i].rows])
            for i in live:
                before = len(kept)
                for r in batches[i].rows:
                    if r.event_id is None:
                        kept.append(r)
                    elif (r.player_id, r.event_id) in claimed:
                        claimed.discard((r.player_id, r.event_id))
                        kept.append(r)
                outcomes[i] = Outcome(len(batches[i].rows) - (len(kept) - before))
        else:
            for i in live:
                outcomes[i] = Outcome(0)
                kept.extend(batches[i].rows)
        if kept:
            await _append(conn, kept, batch_id, copy_min_rows)
            if statements.enqueue is not None:
                await conn.execute(statements.enqueue, batch_id, len(kept), min(r.time for r in kept),
                                   max(r.time for r in kept))
    return GroupResult(outcomes, kept, batch_id)  # type: ignore[arg-type]


async def _write_one_statement(conn, batches: Sequence[Batch], statements: Statements) -> GroupResult:
    rows = [r for b in batches for r in b.rows]
    claim = any(r.event_id is not None for r in rows)
    record = await conn.fetchrow(statements.one[claim], [r.time for r in rows], [r.player_id for r in rows],
                                 [r.action_type for r in rows], [r.value for r in rows], [r.metadata for r in rows],
                                 [r.event_id for r in rows])
    dropped = set(record["dropped"] or ())  # 1-based ordinals in ``rows``
    outcomes: list[Outcome | BaseException] = []
    kept: list[Row] = []
    n = 0
    for b in batches:
        before = len(kept)
        for r in b.rows:
            n += 1
            if n not in dropped:
                kept.append(r)
        outcomes.append(Outcome(len(b.rows) - (len(kept) - before)))
    return GroupResult(outcomes, kept, record["batch_id"])


class Touched(NamedTuple):
    """What detection needs of the stored rows, one per (player, action type)."""

    player_id: str
    action_type: str
    n: int
    first_time: datetime
    last_time: datetime
    min_value: float
    max_value: float


def touched(rows: Sequence[Row]) -> list[Touched]:
    acc: dict[tuple[str, str], list] = {}
    for r in rows:
        a = acc.get((r.player_id, r.action_type))
        if a is None:
            acc[(r.player_id, r.action_type)] = [1, r.time, r.time, r.value, r.value]
            continue
        a[0] += 1
        if r.time < a[1]:
            a[1] = r.time
        if r.time > a[2]:
            a[2] = r.time
        if r.value < a[3]:
            a[3] = r.value
        if r.value > a[4]:
            a[4] = r.value
    return [Touched(p, t, *a) for (p, t), a in acc.items()]


# TimescaleDB: materialize the continuous aggregates over a range written below their watermark
# (an import of history); their refresh policies only look back a few hours. Not in a transaction.
REFRESH_AGGREGATES = (
    "CALL refresh_continuous_aggregate('action_stats_1min', $1::timestamptz, $2::timestamptz)",
    "CALL refresh_continuous_aggregate('action_stats_1h', $1::timestamptz, $2::timestamptz)",
)

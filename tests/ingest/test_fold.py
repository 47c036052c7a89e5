"""The materializer's folds on real PostgreSQL: every aggregate equals raw after folding, with and
without the hll extension; exactly once with two folders at once, and when a fold dies mid-way;
late rows land in their own buckets; the queue's lag is visible."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from services.ingest.actions import Row
from services.ingest.materializer import Cadence, Materializer
from services.ingest.store import IngestStore, fold, partitions, run_migrations
from services.ingest.store.writes import Batch
from tests.harness.aggregates import mismatches, player_totals, queued
from tests.harness.appends import append

NOW = datetime.now(timezone.utc)
TYPES = ("kill", "trade", "login")


def _rows(rnd: random.Random, n: int, *, players: int, start: datetime, span: timedelta) -> list[tuple]:
    # Skewed players (a few very active), values in halves: float sums are exact in any order.
    return [(start + rnd.random() * span, f"f{int(players * rnd.random() ** 3)}", rnd.choice(TYPES),
             rnd.randrange(0, 40) / 2) for _ in range(n)]


async def _database(pg_server, *, hll: bool) -> str:
    """A migrated database; with hll the migration runs as superuser and creates the extension,
    without it as an owner that may not (the exact fallback)."""
    dsn = pg_server.new_database("fold", owner=None if hll else "banhammer")
    await run_migrations(dsn, 7)
    conn = await asyncpg.connect(dsn)
    try:
        await partitions.ensure_days(conn, partitions.days_between(NOW - timedelta(days=3), NOW + timedelta(days=1)))
        assert await fold.has_hll(conn) is hll
    finally:
        await conn.close()
    return dsn


@pytest.mark.parametrize("hll", [True, False], ids=["hll", "exact"])
async def test_folded_aggregates_equal_raw_and_late_rows_land_in_their_buckets(pg_server, hll):
    dsn = await _database(pg_server, hll=hll)
    conn = await asyncpg.connect(dsn)
    rnd = random.Random(11)
    try:
        for _ in range(6):
            await append(conn, _rows(rnd, 700, players=3000, start=NOW - timedelta(hours=2), span=timedelta(hours=2)))
        assert await queued(conn) == 6 * len(fold.FAMILIES)
        assert await fold.drain(conn) == {"stats": 4200, "top": 4200}
        assert await mismatches(conn) == {}

        # Late rows (event time 5 to 20 hours old) in a batch of their own, and mixed with fresh ones.
        late = _rows(rnd, 300, players=50, start=NOW - timedelta(hours=20), span=timedelta(hours=15))
        await append(conn, late)
        await append(conn, late[:10] + _rows(rnd, 100, players=3000, start=NOW - timedelta(minutes=5),
                                             span=timedelta(minutes=5)))
        late_hours = {r[0].replace(minute=0, second=0, microsecond=0) for r in late}
        before = await conn.fetchval("SELECT count(*) FROM action_type_stats_1h WHERE bucket = ANY($1::timestamptz[])",
                                     list(late_hours))
        assert before == 0
        await fold.drain(conn)
        assert await mismatches(conn) == {}
        assert await conn.fetchval("SELECT sum(actions) FROM action_type_stats_1h WHERE bucket = ANY($1::timestamptz[])",
                                   list(late_hours)) == 310
    finally:
        await conn.close()


async def test_top_lists_stay_the_exact_top_k_when_an_hour_has_more_players(pg_server):
    """More than TOP_K players in one hour, folded in many small batches: lists are trimmed and
    re-entered as counts grow: K kept, counts exact, nobody left out above the lowest listed."""
    dsn = await _database(pg_server, hll=False)
    conn = await asyncpg.connect(dsn)
    rnd = random.Random(5)
    hour = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    try:
        for i in range(12):
            players = 2500 + 200 * i  # the population grows, and early players keep acting
            await append(conn, _rows(rnd, 1500, players=players, start=hour, span=timedelta(hours=1)))
            if i % 3 == 2:
                await fold.drain(conn, ("top",), max_batches=2)
        await fold.drain(conn)
        kept = await conn.fetchval("SELECT max(n) FROM (SELECT count(*) AS n FROM top_players_1h GROUP BY bucket, action_type) x")
        assert kept == fold.TOP_K
        assert await conn.fetchval("SELECT count(DISTINCT player_id) FROM player_actions_ts") > fold.TOP_K
        assert await mismatches(conn) == {}
    finally:
        await conn.close()


async def test_two_folders_at_once_fold_every_batch_exactly_once(pg_server):
    dsn = await _database(pg_server, hll=True)
    writer, a, b = [await asyncpg.connect(dsn) for _ in range(3)]
    rnd = random.Random(3)
    produced = asyncio.Event()

    async def produce():
        for _ in range(40):
            await append(writer, _rows(rnd, 200, players=500, start=NOW - timedelta(hours=3), span=timedelta(hours=3)))
            await asyncio.sleep(0)  # let the folders interleave with the appends
        produced.set()

    async def folder(conn):
        hll = await fold.has_hll(conn)
        while True:
            for family in fold.FAMILIES:  # a busy family (the other folder holds it) is skipped
                await fold.fold(conn, family, max_batches=3, hll=hll)
            if produced.is_set() and await queued(conn) == 0:
                return
            await asyncio.sleep(0)

    try:
        await asyncio.gather(produce(), folder(a), folder(b))
        assert await queued(a) == 0
        assert await a.fetchval("SELECT sum(actions) FROM action_type_stats_1min") == 40 * 200
        assert await mismatches(a) == {}
    finally:
        for conn in (writer, a, b):
            await conn.close()


async def test_a_fold_killed_mid_way_loses_nothing_and_counts_nothing_twice(pg_server):
    dsn = await _database(pg_server, hll=True)
    admin, blocker, folder = [await asyncpg.connect(dsn) for _ in range(3)]
    minute = NOW.replace(second=0, microsecond=0) - timedelta(minutes=10)
    try:
        await append(admin, [(minute + timedelta(seconds=i), f"k{i}", "kill", 1.0) for i in range(20)])
        await fold.drain(admin)
        await append(admin, [(minute + timedelta(seconds=i), f"k{i}", "kill", 2.0) for i in range(30)])
        snapshot = "SELECT actions, value_sum FROM action_type_stats_1min WHERE bucket = $1"
        assert tuple(await admin.fetchrow(snapshot, minute)) == (20, 20.0)

        # Hold the bucket's row: the fold deletes its queue row, then waits on the upsert.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM action_type_stats_1min WHERE bucket = $1 FOR UPDATE", minute)
        pid = folder.get_server_pid()
        task = asyncio.create_task(fold.fold(folder, "stats", hll=True))
        deadline = time.monotonic() + 20
        while await admin.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid) != "Lock":
            assert time.monotonic() < deadline, "the fold never reached the locked row"
            await asyncio.sleep(0.02)
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await task
        await tx.rollback()

        assert await admin.fetchval("SELECT count(*) FROM ingest_pending_stats") == 1  # still queued
        assert tuple(await admin.fetchrow(snapshot, minute)) == (20, 20.0)  # nothing counted
        await fold.drain(admin)
        assert tuple(await admin.fetchrow(snapshot, minute)) == (50, 80.0)
        assert await mismatches(admin) == {}
    finally:
        for conn in (admin, blocker, folder):
            await conn.close()


async def _until_empty(conn, families: tuple[str, ...] = fold.FAMILIES) -> None:
    deadline = time.monotonic() + 30
    while any([await conn.fetchval(f"SELECT count(*) FROM {fold.queue(f)}") for f in families]):
        assert time.monotonic() < deadline, f"the materializer did not fold {families}"
        await asyncio.sleep(0.05)


async def test_the_materializer_folds_in_the_background_and_its_lag_is_visible(pg_server):
    dsn = await _database(pg_server, hll=True)
    conn = await asyncpg.connect(dsn)
    store = IngestStore(dsn, pool_size=3)
    await store.open()
    rnd = random.Random(9)
    try:
        await append(conn, _rows(rnd, 500, players=100, start=NOW - timedelta(minutes=30), span=timedelta(minutes=30)))
        lag = {q.family: q for q in await store.fold_queues()}
        assert {f: (q.batches, q.rows) for f, q in lag.items()} == {f: (1, 500) for f in fold.FAMILIES}
        assert all(q.oldest is not None and q.lag_seconds >= 0 for q in lag.values())

        # stats every 50 ms; top once an hour, or as soon as 400 actions wait.
        cadences = {"stats": Cadence(0.05), "top": Cadence(3600, min_rows=400)}
        materializer = Materializer(store, cadences, max_batches=10, retention_days=90)
        materializer.start()
        try:
            await _until_empty(conn)  # the first round of every family folds at once
            await append(conn, _rows(rnd, 300, players=100, start=NOW - timedelta(minutes=9), span=timedelta(minutes=9)))
            await _until_empty(conn, ("stats",))
            assert await conn.fetchval("SELECT count(*) FROM ingest_pending_top") == 1  # below its threshold
            await append(conn, _rows(rnd, 300, players=100, start=NOW - timedelta(minutes=9), span=timedelta(minutes=9)))
            await _until_empty(conn)  # 600 queued: past the threshold long before the hour
        finally:
            await materializer.close()
        assert [(q.batches, q.rows, q.oldest) for q in await store.fold_queues()] == [(0, 0, None)] * len(fold.FAMILIES)
        assert await mismatches(conn) == {}
    finally:
        await store.close()
        await conn.close()


async def test_the_real_write_path_feeds_every_queue_and_folds_to_raw(pg_server):
    """Ingest's own write transaction (store.write: COPY or one statement, event-id claims) enqueues
    every batch for every family; folded, every aggregate equals raw, duplicates counted once."""
    dsn = await _database(pg_server, hll=True)
    store = IngestStore(dsn, pool_size=2)
    await store.open()
    conn = await asyncpg.connect(dsn)
    rnd = random.Random(4)
    try:
        def batch(n: int, prefix: str) -> Batch:
            return Batch([Row(t, p, a, v, None, f"{prefix}{i}" if i % 2 else None)
                          for i, (t, p, a, v) in enumerate(_rows(rnd, n, players=300, start=NOW - timedelta(hours=5),
                                                                 span=timedelta(hours=5)))])
        small, large = batch(40, "s"), batch(3000, "l")
        await store.write([small, large])
        await store.write([small])  # resent: its 20 actions with event ids are duplicates
        stored = await conn.fetchval("SELECT count(*) FROM player_actions_ts")
        assert stored == 40 + 3000 + 20
        queues = await store.fold_queues()
        assert [(q.family, q.rows) for q in queues] == [(f, stored) for f in fold.FAMILIES]
        await fold.drain(conn)
        assert await mismatches(conn) == {}
        assert await conn.fetchval("SELECT sum(actions) FROM action_type_stats_1h") == stored
    finally:
        await conn.close()
        await store.close()


async def test_aggregates_past_retention_are_expired(pg_server):
    dsn = await _database(pg_server, hll=False)
    conn = await asyncpg.connect(dsn)
    try:
        old, recent = NOW - timedelta(days=91), NOW - timedelta(days=89)
        for t, n in ((old - timedelta(days=1), 2), (old, 3), (recent, 4)):
            await conn.execute("INSERT INTO action_type_stats_1h VALUES (date_trunc('hour', $1::timestamptz), 'kill', 1, 1, 1, 1)", t)
            await conn.execute("INSERT INTO player_hours VALUES ('x', date_trunc('hour', $1::timestamptz), $2, $1, $1)", t, n)
            await conn.execute("INSERT INTO players_seen_1min VALUES (date_trunc('minute', $1::timestamptz), 'x')", t)
        before = await player_totals(conn, "x")
        await fold.expire(conn, 90)
        for table in ("action_type_stats_1h", "player_hours", "players_seen_1min"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1, table
            assert await conn.fetchval(f"SELECT min(bucket) FROM {table}") > NOW - timedelta(days=90), table
        # The expired hours moved into the player's summary: its totals are all-time still.
        assert await conn.fetchrow("SELECT action_count, first_seen, last_seen FROM player_summary "
                                   "WHERE player_id = 'x'") == (5, old - timedelta(days=1), old)
        assert await player_totals(conn, "x") == before == (9, old - timedelta(days=1), recent)
    finally:
        await conn.close()

"""Shared dashboard results: freshness, stale-while-revalidate, single flight, deadlines; and the
service with sharing enabled still agreeing with raw SQL at the as_of it reports."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from banhammer.query.v1 import query_pb2 as pb
from services.query.deadline import Deadline
from services.query.snapshots import Snapshots
from services.runtime.errors import DeadlineExceeded

from .helpers import duration, raw_top, raw_window, when


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Computation:
    """compute(deadline) that finishes only when released; counts its starts."""

    def __init__(self) -> None:
        self.starts = 0
        self.release = asyncio.Event()
        self.fail = False
        self.deadlines: list[Deadline] = []

    async def __call__(self, deadline: Deadline) -> int:
        self.starts += 1
        self.deadlines.append(deadline)
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database said no")
        return self.starts


async def test_fresh_stale_and_expired_entries():
    clock, compute = Clock(), Computation()
    snaps = Snapshots(fresh_for=2, stale_for=30, clock=clock)
    compute.release.set()
    assert await snaps.get("k", compute, Deadline()) == 1
    clock.t += 1.9
    assert await snaps.get("k", compute, Deadline()) == 1 and compute.starts == 1  # fresh: no recompute

    compute.release.clear()
    clock.t += 1  # stale: served at once, one recompute in the background
    assert await snaps.get("k", compute, Deadline()) == 1
    assert await snaps.get("k", compute, Deadline()) == 1
    assert len(snaps._running) == 1  # one recomputation for both callers
    compute.release.set()
    await asyncio.wait_for(asyncio.gather(*snaps._running.values()), 5)
    assert await snaps.get("k", compute, Deadline()) == 2 and compute.starts == 2

    clock.t += 31  # expired: the caller waits for the recomputation
    assert await snaps.get("k", compute, Deadline()) == 3


async def test_served_age_is_recorded():
    from prometheus_client import REGISTRY

    def observed() -> tuple[float, float]:
        get = REGISTRY.get_sample_value
        return (get("banhammer_query_snapshot_age_seconds_count"), get("banhammer_query_snapshot_age_seconds_sum"))

    clock, compute = Clock(), Computation()
    snaps = Snapshots(fresh_for=2, stale_for=30, clock=clock)
    compute.release.set()
    count, total = observed()
    await snaps.get("k", compute, Deadline())  # computed for this caller: age 0
    clock.t += 1.5
    await snaps.get("k", compute, Deadline())  # fresh, 1.5 s old
    clock.t += 3
    await snaps.get("k", compute, Deadline())  # stale, 4.5 s old
    await asyncio.wait_for(asyncio.gather(*snaps._running.values()), 5)
    after_count, after_total = observed()
    assert (after_count - count, after_total - total) == (3, 6.0)


async def test_concurrent_callers_share_one_computation_and_deadlines_hold():
    compute = Computation()
    snaps = Snapshots(fresh_for=2, stale_for=30, clock=Clock())
    waiters = [asyncio.create_task(snaps.get("k", compute, Deadline())) for _ in range(5)]
    with pytest.raises(DeadlineExceeded):
        await snaps.get("k", compute, Deadline.after(0.05))
    compute.release.set()
    assert await asyncio.gather(*waiters) == [1] * 5
    assert compute.starts == 1
    # The shared computation runs on its own budget, not the statement cap or any caller's deadline.
    (budget,) = compute.deadlines
    assert not budget.capped and 50 < budget.remaining() <= 60


async def test_a_failed_computation_reaches_its_waiters_and_is_retried():
    compute = Computation()
    compute.fail = True
    compute.release.set()
    snaps = Snapshots(fresh_for=2, stale_for=30, clock=Clock())
    with pytest.raises(RuntimeError):
        await snaps.get("k", compute, Deadline())
    compute.fail = False
    assert await snaps.get("k", compute, Deadline()) == 2


async def test_disabled_sharing_computes_every_time_with_the_callers_deadline():
    seen = []

    async def compute(deadline: Deadline) -> int:
        seen.append(deadline)
        return len(seen)

    snaps = Snapshots(fresh_for=0, stale_for=0)
    mine = Deadline.after(5)
    assert [await snaps.get("k", compute, mine) for _ in range(2)] == [1, 2]
    assert seen == [mine, mine]


def test_shared_results_report_their_own_instant(db, start_query):
    stub = start_query(db.reader_dsn, QUERY_SNAPSHOT_FRESH_MS="600000", QUERY_SNAPSHOT_STALE_MS="600000").stub
    first = stub.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=10)
    second = stub.GetStatsOverview(pb.GetStatsOverviewRequest(), timeout=10)
    assert second == first  # the same shared result, as_of included
    as_of = when(first.as_of)
    assert (first.last_hour.action_count, first.last_hour.unique_players) == raw_window(db, as_of - timedelta(hours=1), as_of)

    # Paging through a shared ranking: later pages come from the same instant, no gaps or repeats.
    request = pb.GetTopPlayersRequest(window=duration(timedelta(days=7)), page_size=4)
    players, token = [], ""
    for _ in range(200):  # a cursor that does not advance fails instead of looping
        request.page_token = token
        r = stub.GetTopPlayers(request, timeout=10)
        players.extend(r.players)
        token = r.next_page_token
        if not token:
            break
    else:
        raise AssertionError("still paging after 200 pages")
    expected = raw_top(db, when(r.window.start_time), when(r.window.end_time))
    assert [(p.player_id, p.action_count, when(p.last_activity)) for p in players] == expected

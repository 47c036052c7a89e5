"""Suite-wide statistics: overview, most active players, hourly load.

All from aggregates whose size does not grow with the number of players (store/sql.py): exact
action counts, distinct players from HLL sketches (within 2%) or exact sets, rankings from per-hour
top lists with a stated bound."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.runtime import pagination

from . import limits, model
from .clock import instant, now, span_us, to_us
from .deadline import Deadline
from .snapshots import Snapshots
from .store import QueryStore, reads
from .windows import HOUR, floor_to, split

MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
SEVERITIES = (1, 2, 3, 4)
#: Ranks kept in a shared top-players result: enough for the largest page plus "is there more".
RANKING_ROWS = limits.TOP_PAGE_MAX + 1


@dataclass(frozen=True)
class TopPlayersQuery:
    window: timedelta
    action_type: str
    page_size: int
    page_token: str


@dataclass(frozen=True)
class _Ranking:
    """The first RANKING_ROWS ranks of one window at one instant."""

    as_of: datetime
    rows: list[tuple[str, int, datetime | None]]
    accuracy: model.RankingAccuracy

    @property
    def complete(self) -> bool:
        return len(self.rows) < RANKING_ROWS


def _filters(q: TopPlayersQuery) -> dict:
    """What a top-players page token is bound to (page_size may change between pages)."""
    return {"window_us": span_us(q.window), "action_type": q.action_type}


class Stats:
    def __init__(self, store: QueryStore, snapshots: Snapshots, clock: Callable[[], datetime] = now) -> None:
        self.store = store
        self.snapshots = snapshots
        self.clock = clock
        self._hll: bool | None = None  # the schema's choice, read once

    async def _sketches(self, s) -> tuple[bool, model.Accuracy]:
        if self._hll is None:
            self._hll = await reads.sketches(s)
        return self._hll, model.HLL if self._hll else model.EXACT

    # --- overview ---------------------------------------------------------------------------
    async def overview(self, deadline: Deadline) -> model.Overview:
        return await self.snapshots.get(("overview",), self._overview, deadline)

    async def _overview(self, deadline: Deadline) -> model.Overview:
        as_of = self.clock()
        async with self.store.session(deadline, consistent=True) as s:
            hll, accuracy = await self._sketches(s)
            windows = []
            for length in (MINUTE, HOUR, DAY):
                actions, players = await reads.window_totals(s, split(as_of - length, as_of), hll)
                windows.append(model.WindowTotals(length, actions, players, accuracy))
            by_rule = await reads.violations_by_rule(s, as_of - DAY, as_of, limits.OVERVIEW_RULES_MAX)
            by_severity = await reads.violations_by_severity(s, as_of - DAY, as_of)
            total, banned = await reads.player_totals(s, as_of)
        return model.Overview(
            as_of=as_of, last_minute=windows[0], last_hour=windows[1], last_day=windows[2], by_rule=by_rule,
            by_severity={sev: by_severity.get(sev, 0) for sev in SEVERITIES},
            banned_players=banned, total_players=total)

    # --- top players ------------------------------------------------------------------------
    async def top_players(self, q: TopPlayersQuery, deadline: Deadline) -> model.TopPlayersPage:
        cursor = pagination.decode(q.page_token, "top_players", _filters(q))
        key = ("top", span_us(q.window), q.action_type)
        if cursor is None:
            if self.snapshots.enabled:
                ranking = await self.snapshots.get(key, lambda d: self._ranking(q, d), deadline)
                return self._page_of(ranking, q, 0)
            as_of, after, rank = self.clock(), None, 0
        else:
            as_of, after, rank = self._cursor(cursor)
            ranking = self.snapshots.peek(key)
            if ranking is not None and ranking.as_of == as_of:
                start = bisect.bisect_right([(-n, p) for p, n, _ in ranking.rows], (-after[0], after[1]))
                if ranking.complete or start + q.page_size < len(ranking.rows):
                    return self._page_of(ranking, q, start)
        async with self.store.session(deadline, consistent=True) as s:
            ranked = await reads.top_players(s, split(as_of - q.window, as_of), q.action_type, after, q.page_size + 1)
        return self._page(ranked.rows, q, as_of, rank, more=len(ranked.rows) > q.page_size,
                          accuracy=model.RankingAccuracy(ranked.exact_ranks, ranked.unlisted_max))

    async def _ranking(self, q: TopPlayersQuery, deadline: Deadline) -> _Ranking:
        as_of = self.clock()
        async with self.store.session(deadline, consistent=True) as s:
            ranked = await reads.top_players(s, split(as_of - q.window, as_of), q.action_type, None, RANKING_ROWS)
        return _Ranking(as_of, ranked.rows, model.RankingAccuracy(ranked.exact_ranks, ranked.unlisted_max))

    def _page_of(self, ranking: _Ranking, q: TopPlayersQuery, start: int) -> model.TopPlayersPage:
        rows = ranking.rows[start:start + q.page_size + 1]
        return self._page(rows, q, ranking.as_of, start, more=len(rows) > q.page_size, accuracy=ranking.accuracy)

    def _page(self, rows: list, q: TopPlayersQuery, as_of: datetime, rank: int, *, more: bool,
              accuracy: model.RankingAccuracy) -> model.TopPlayersPage:
        players = [model.TopPlayer(rank + i + 1, p, n, last) for i, (p, n, last) in enumerate(rows[:q.page_size])]
        token = ""
        if more and players:
            last = players[-1]
            token = pagination.encode("top_players", _filters(q),
                                      {"t": to_us(as_of), "n": last.action_count, "p": last.player_id, "r": last.rank})
        return model.TopPlayersPage(players, as_of - q.window, as_of, token, accuracy)

    def _cursor(self, cursor: dict) -> tuple[datetime, tuple[int, str], int]:
        as_of = instant(cursor.get("t"))
        if as_of > self.clock() + MINUTE:
            raise pagination.invalid()
        after = (pagination.integer(cursor.get("n")), pagination.text(cursor.get("p")))
        return as_of, after, pagination.integer(cursor.get("r"), 0, 2**31)

    # --- hourly load ------------------------------------------------------------------------
    async def hourly_load(self, hours: int, deadline: Deadline) -> model.HourlyLoad:
        return await self.snapshots.get(("hourly", hours), lambda d: self._hourly(hours, d), deadline)

    async def _hourly(self, hours: int, deadline: Deadline) -> model.HourlyLoad:
        as_of = self.clock()
        first = floor_to(as_of, HOUR) - (hours - 1) * HOUR
        async with self.store.session(deadline, consistent=True) as s:
            hll, accuracy = await self._sketches(s)
            per_hour = await reads.hourly_load(s, split(first, as_of), hll)
        buckets = [first + i * HOUR for i in range(hours)]
        return model.HourlyLoad([model.HourLoad(h, *per_hour.get(h, (0, 0))) for h in buckets], as_of, accuracy)

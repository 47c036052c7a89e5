"""Violation search: filters by player, rule, severity and detection time; newest first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.runtime import pagination

from . import model
from .clock import instant, now, to_us
from .deadline import Deadline
from .store import QueryStore, reads


@dataclass(frozen=True)
class ViolationsQuery:
    player_id: str
    rule: str
    severities: tuple[int, ...]  # empty: any
    start: datetime | None  # None: no time filter (everything retained)
    end: datetime | None  # None with a start: now
    page_size: int
    page_token: str


class Violations:
    def __init__(self, store: QueryStore, clock: Callable[[], datetime] = now) -> None:
        self.store = store
        self.clock = clock

    async def list(self, q: ViolationsQuery, deadline: Deadline) -> model.Page:
        filters = {"player_id": q.player_id, "rule": q.rule, "severities": sorted(set(q.severities)),
                   "start": None if q.start is None else to_us(q.start),
                   "end": None if q.end is None else to_us(q.end)}
        cursor = pagination.decode(q.page_token, "violations", filters)
        after = None
        if cursor is not None:
            after = (instant(cursor.get("t")), pagination.integer(cursor.get("i"), -(2**63), 2**63 - 1))
        end = None if q.start is None else (q.end or self.clock())
        async with self.store.session(deadline) as s:
            rows = await reads.violations(s, start=q.start, end=end, player_id=q.player_id, rule=q.rule,
                                          severities=tuple(filters["severities"]), after=after,
                                          limit=q.page_size + 1)
        page = rows[:q.page_size]
        token = ""
        if len(rows) > q.page_size and page:
            token = pagination.encode("violations", filters, {"t": to_us(page[-1].detected_at), "i": page[-1].id})
        return model.Page(page, token)

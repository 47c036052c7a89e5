"""One player: summary with recent violations and per-minute activity, and raw action history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.runtime import pagination
from services.runtime.errors import NotFound

from . import model
from .clock import instant, now, to_us
from .deadline import Deadline
from .store import QueryStore, reads


@dataclass(frozen=True)
class PlayerQuery:
    player_id: str
    activity_window: timedelta
    violations_limit: int


@dataclass(frozen=True)
class ActionsQuery:
    player_id: str
    start: datetime
    end: datetime | None  # None: now
    action_type: str
    page_size: int
    page_token: str


class Players:
    def __init__(self, store: QueryStore, clock: Callable[[], datetime] = now) -> None:
        self.store = store
        self.clock = clock

    async def get(self, q: PlayerQuery, deadline: Deadline) -> model.PlayerView:
        as_of = self.clock()
        start = as_of - q.activity_window
        async with self.store.session(deadline, consistent=True) as s:
            summary = await reads.player_summary(s, q.player_id, as_of)
            if summary is None:
                raise NotFound(f"player {q.player_id!r} has never been seen")
            violations = await reads.recent_violations(s, q.player_id, q.violations_limit)
            # Per minute from the player's raw rows (one index range): exact, and no per-player rollup.
            activity = await reads.player_activity(s, q.player_id, start, as_of)
        return model.PlayerView(summary, violations, activity, start, as_of)

    async def actions(self, q: ActionsQuery, deadline: Deadline) -> model.Page:
        filters = {"player_id": q.player_id, "start": to_us(q.start),
                   "end": None if q.end is None else to_us(q.end), "action_type": q.action_type}
        cursor = pagination.decode(q.page_token, "player_actions", filters)
        after, skip = _action_cursor(cursor) if cursor is not None else (None, 0)
        end = q.end or self.clock()
        async with self.store.session(deadline) as s:
            rows = await reads.player_actions(s, player_id=q.player_id, start=q.start, end=end,
                                              action_type=q.action_type, after=after, limit=q.page_size + skip + 1)
        # Rows equal to the cursor key come first; `skip` of them were on earlier pages.
        dropped = 0
        while dropped < skip and dropped < len(rows) and rows[dropped][0] == after:
            dropped += 1
        rows = rows[dropped:]
        page, more = rows[:q.page_size], len(rows) > q.page_size
        token = ""
        if more and page:
            last = page[-1][0]
            same = sum(1 for key, _ in page if key == last) + (skip if last == after else 0)
            t, action_type, value, event_id, md5 = last
            token = pagination.encode("player_actions", filters,
                                      {"t": to_us(t), "a": action_type, "v": value, "e": event_id, "m": md5, "s": same})
        return model.Page([action for _, action in page], token)


#: Most rows with one identical key a cursor may skip (identical rows are rare; this bounds LIMIT).
MAX_SKIP = 1_000_000


def _action_cursor(c: dict) -> tuple[reads.ActionKey, int]:
    v, md5 = c.get("v"), pagination.text(c.get("m"))
    if isinstance(v, bool) or not isinstance(v, (int, float)) or len(md5) != 32:
        raise pagination.invalid()
    key = (instant(c.get("t")), pagination.text(c.get("a")), float(v), pagination.text(c.get("e")), md5)
    return key, pagination.integer(c.get("s"), 1, MAX_SKIP)

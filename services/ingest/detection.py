"""Rule evaluation for the players touched by one committed group.

Impossible values are decided from the group's own summary (min/max per player and action type);
windowed rules (rate, value, baseline) query the database for just those players. Population
percentiles come from the materializer's hourly counts (raw rows for windows under an hour) and
are cached per rule for a few seconds: one number per rule, so memory does not depend on the
number of players.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from .rules import Baseline, Impossible, Rate, Rule, Value, baseline_limit, dispatch
from .store import IngestStore
from .store import detect as sql
from .store.writes import Touched

log = logging.getLogger("banhammer.ingest.detection")

# How much one violation of each severity raises a player's risk score (see store/detect.py).
RISK_WEIGHT = {1: 0.05, 2: 0.15, 3: 0.4, 4: 0.8}
_TICK = timedelta(microseconds=1)  # windows are reported half-open: [start, end)

# (rule, violation, evidence) -> serialized BanRequest, stored in the outbox with the violation.
BanRequest = Callable[[Rule, sql.Recorded, dict[str, Any]], bytes]


class Detector:
    def __init__(self, store: IngestStore, rules: Sequence[Rule], *, ban_request: BanRequest | None = None,
                 on_ban: Callable[[], None] | None = None, baseline_cache_seconds: float = 30.0) -> None:
        self.store = store
        self.rules = [r for r in rules if r.enabled]
        self.ban_request = ban_request
        self.on_ban = on_ban  # wakes the ban deliverer
        self.baseline_cache_seconds = baseline_cache_seconds
        self._percentiles: dict[str, tuple[float, sql.Percentile]] = {}  # rule -> (expires, percentile)

    async def evaluate(self, touched: Sequence[Touched]) -> int:
        """Evaluate every enabled rule; returns the number of violations recorded."""
        if not touched or not self.rules:
            return 0
        total = 0
        for rule in self.rules:
            rows = [t for t in touched if not rule.action_type or t.action_type == rule.action_type]
            if not rows:
                continue
            found = await self._candidates(rule, rows)
            if found:
                total += await self._record(rule, found)
        return total

    async def _candidates(self, rule: Rule, rows: list[Touched]) -> list[sql.Candidate]:
        ends: dict[str, Any] = {}
        for t in rows:  # one window per player, ending at its newest stored action
            if t.player_id not in ends or t.last_time > ends[t.player_id]:
                ends[t.player_id] = t.last_time
        action_type = rule.action_type or None
        players, t_ends = list(ends), list(ends.values())

        async def impossible(c: Impossible) -> list[sql.Candidate]:
            return _impossible(rule, c, rows)

        async def rate(c: Rate) -> list[sql.Candidate]:
            hits = await self.store.window_hits("count", players, t_ends, action_type, c.window, c.max_count)
            return [_found(rule, h, c.window, count=h.n, limit=c.max_count) for h in hits]

        async def value(c: Value) -> list[sql.Candidate]:
            hits = await self.store.window_hits(c.aggregate, players, t_ends, action_type, c.window, c.threshold)
            return [_found(rule, h, c.window, aggregate=c.aggregate,
                           value=h.total if c.aggregate == "sum" else h.peak, limit=c.threshold) for h in hits]

        async def baseline(c: Baseline) -> list[sql.Candidate]:
            base = await self._percentile(rule, c)
            if base.value is None or base.population < c.min_population:
                return []
            base_rate = base.value / base.span  # actions per second of what was counted
            limit = baseline_limit(c, base_rate)
            hits = await self.store.window_hits("count", players, t_ends, action_type, c.window, limit)
            return [_found(rule, h, c.window, player_rate=round(h.n / c.window, 6),
                           percentile=c.percentile, percentile_rate=round(base_rate, 6),
                           baseline_seconds=round(base.span, 3), limit=round(limit, 3), multiplier=c.multiplier,
                           population=base.population, count=h.n) for h in hits]

        return await dispatch(rule.condition, rate=rate, value=value, impossible=impossible, baseline=baseline)

    async def _percentile(self, rule: Rule, c: Baseline) -> sql.Percentile:
        now = time.monotonic()
        cached = self._percentiles.get(rule.name)
        if cached and cached[0] > now:
            return cached[1]
        value = await self.store.percentile(c.percentile, c.baseline_window, rule.action_type or None)
        self._percentiles[rule.name] = (now + self.baseline_cache_seconds, value)
        return value

    def use_rules(self, rules: Sequence[Rule]) -> None:
        """Evaluate these from the next pass on (a changed baseline rule must not reuse its old number)."""
        self.rules = [r for r in rules if r.enabled]
        self._percentiles.clear()

    async def _record(self, rule: Rule, found: list[sql.Candidate]) -> int:
        ban = None
        if rule.ban is not None and self.ban_request is not None:
            evidence = {c.player_id: c.evidence for c in found}
            make = self.ban_request

            def ban(v: sql.Recorded) -> bytes:
                return make(rule, v, evidence[v.player_id])
        recorded = await self.store.record_violations(rule.name, rule.severity, RISK_WEIGHT[rule.severity], ban,
                                                      rule.effective_cooldown, found)
        if recorded:
            log.info("violations recorded", extra={"rule": rule.name, "count": len(recorded)})
            if ban is not None and self.on_ban is not None:
                self.on_ban()
        return len(recorded)


def _impossible(rule: Rule, c: Impossible, rows: list[Touched]) -> list[sql.Candidate]:
    out: dict[str, sql.Candidate] = {}
    for t in rows:
        if t.player_id in out:
            continue
        if c.min_value is not None and t.min_value < c.min_value:
            evidence = {"value": t.min_value, "min_value": c.min_value}
        elif c.max_value is not None and t.max_value > c.max_value:
            evidence = {"value": t.max_value, "max_value": c.max_value}
        else:
            continue
        evidence["action_type"] = t.action_type
        out[t.player_id] = sql.Candidate(t.player_id, evidence, t.first_time, t.last_time + _TICK)
    return list(out.values())


def _found(rule: Rule, hit: sql.WindowHit, window: float, **evidence: Any) -> sql.Candidate:
    evidence["action_type"] = rule.action_type or "*"
    evidence["window_seconds"] = window
    return sql.Candidate(hit.player_id, evidence, hit.t_end - timedelta(seconds=window) + _TICK, hit.t_end + _TICK)


class DetectionQueue:
    """Runs detection beside the writers instead of inside them, coalescing what piles up.

    Writers hand over each committed group's touched players and go on committing; the worker
    evaluates everything queued since its last pass in one go (so a burst of tiny commits costs one
    evaluation, not one each). The queue is bounded by touched entries: when it is full, writers
    wait, the write queue fills, and callers get RESOURCE_EXHAUSTED — detection never falls
    unboundedly behind and never silently skips committed actions.
    """

    def __init__(self, detector: Detector, max_entries: int = 20_000, gather_seconds: float = 0.05) -> None:
        self.detector = detector
        self.max_entries = max_entries
        # After the first commit arrives, wait this long for more before evaluating: a game server
        # sending one action at a time otherwise pays a full evaluation (several queries) per call.
        self.gather_seconds = gather_seconds
        self._items: list[Touched] = []
        self._since: float | None = None  # when the oldest commit not yet evaluated was handed over
        self._evaluating: float | None = None  # the same, for the batch being evaluated now
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._run(), name="ingest-detection")

    async def put(self, touched: Sequence[Touched]) -> None:
        if not touched or not self.detector.rules:
            return
        async with self._changed:
            await self._changed.wait_for(lambda: not self._items or len(self._items) + len(touched) <= self.max_entries)
            self._items.extend(touched)
            if self._since is None:
                self._since = time.monotonic()
            self._changed.notify_all()

    async def _run(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._items))
            if self.gather_seconds:
                await asyncio.sleep(self.gather_seconds)
            async with self._changed:
                work, self._items = self._items, []
                since, self._since = self._since, None
                self._evaluating = since
                self._changed.notify_all()
            try:
                await self.detector.evaluate(work)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the actions are committed; log and go on
                log.exception("detection failed", extra={"touched": len(work)})
            finally:
                self._evaluating = None

    def lag_seconds(self) -> float:
        """How long the oldest committed action not yet evaluated has waited (0: none waits)."""
        oldest = min((t for t in (self._evaluating, self._since) if t is not None), default=None)
        return 0.0 if oldest is None else time.monotonic() - oldest

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

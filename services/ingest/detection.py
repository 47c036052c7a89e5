"""Rule evaluation for the players touched by one committed group.

Impossible values are decided from the group's own summary (min/max per player and action type);
windowed rules (rate, value, baseline) query the database for just those players. Population
percentiles come from the rollups and are cached per rule for a few seconds: one number per rule,
so memory does not depend on the number of players.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from .rules import Baseline, Impossible, Rate, Rule, Value
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
        self._percentiles: dict[str, tuple[float, float | None, int]] = {}  # rule -> (expires, value, population)

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
        c = rule.condition
        if isinstance(c, Impossible):
            return _impossible(rule, c, rows)
        ends: dict[str, Any] = {}
        for t in rows:  # one window per player, ending at its newest stored action
            if t.player_id not in ends or t.last_time > ends[t.player_id]:
                ends[t.player_id] = t.last_time
        action_type = rule.action_type or None
        players, t_ends = list(ends), list(ends.values())
        if isinstance(c, Rate):
            hits = await self.store.window_hits("count", players, t_ends, action_type, c.window, c.max_count)
            return [_found(rule, h, c.window, count=h.n, limit=c.max_count) for h in hits]
        if isinstance(c, Value):
            hits = await self.store.window_hits(c.aggregate, players, t_ends, action_type, c.window, c.threshold)
            return [_found(rule, h, c.window, aggregate=c.aggregate,
                           value=h.total if c.aggregate == "sum" else h.peak, limit=c.threshold) for h in hits]
        assert isinstance(c, Baseline)
        base, population = await self._percentile(rule, c)
        if base is None or population < c.min_population:
            return []
        limit_rate = base / c.baseline_window * c.multiplier  # actions per second
        # Never below ``multiplier`` actions: when the window is much shorter than the baseline
        # window (5 min vs 1 h), the scaled limit falls under one action, and a single action
        # then "exceeded" it — every active player was flagged (and each flag cost writes).
        limit = max(limit_rate * c.window, c.multiplier)
        hits = await self.store.window_hits("count", players, t_ends, action_type, c.window, limit)
        return [_found(rule, h, c.window, player_rate=round(h.n / c.window, 6),
                       percentile=c.percentile, percentile_rate=round(base / c.baseline_window, 6),
                       multiplier=c.multiplier, population=population, count=h.n) for h in hits]

    async def _percentile(self, rule: Rule, c: Baseline) -> tuple[float | None, int]:
        now = time.monotonic()
        cached = self._percentiles.get(rule.name)
        if cached and cached[0] > now:
            return cached[1], cached[2]
        value, population = await self.store.percentile(c.percentile, c.baseline_window, rule.action_type or None)
        self._percentiles[rule.name] = (now + self.baseline_cache_seconds, value, population)
        return value, population

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
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._run(), name="ingest-detection")

    async def put(self, touched: Sequence[Touched]) -> None:
        if not touched or not self.detector.rules:
            return
        async with self._changed:
            await self._changed.wait_for(lambda: not self._items or len(self._items) + len(touched) <= self.max_entries)
            self._items.extend(touched)
            self._changed.notify_all()

    async def _run(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._items))
            if self.gather_seconds:
                await asyncio.sleep(self.gather_seconds)
            async with self._changed:
                work, self._items = self._items, []
                self._changed.notify_all()
            try:
                await self.detector.evaluate(work)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the actions are committed; log and go on
                log.exception("detection failed", extra={"touched": len(work)})

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

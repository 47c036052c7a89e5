"""The rulebook: detection rules kept in the database, followed by every ingest replica.

Each replica polls the rulebook's revision (one indexed ``max`` every POLL_SECONDS) and reloads
the rules when it moved, so a change made through any replica is in force everywhere within about
two seconds, without a restart. On a database whose rulebook has never held a rule, the rules file
(INGEST_RULES_FILE, else rules.default.json) seeds it; from then on the database is the source.

Changes are validated as the file is (``rules.parse_rule``), attributed to the caller's verified
subject, and recorded in the audit trail; the dry run replays a rule over recent stored actions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound

from .rules import DEFAULT_FILE, Baseline, Impossible, Rule, RuleError, baseline_limit, dispatch, parse_rule
from .store import dry_run as dry_sql
from .store.rules import Change, Exists, Missing, RuleStore, Stale

log = logging.getLogger("banhammer.ingest.rulebook")

POLL_SECONDS = 2.0


@dataclass(frozen=True)
class DryRun:
    start: datetime
    limit: float
    result: dry_sql.Result


def file_definitions(path: str = "") -> list[dict[str, Any]]:
    """The rules file's rules as JSON (what seeds an empty rulebook); checked by ``load_rules``."""
    doc = json.loads((Path(path) if path else DEFAULT_FILE).read_text())
    return [d for d in doc["rules"]]


class Rulebook:
    def __init__(self, store: Any, on_change: Callable[[list[Rule]], None]) -> None:
        self.store = RuleStore(store)
        self.on_change = on_change  # given every rule (disabled ones too) after each reload
        self.revision = 0
        self.rules: list[Rule] = []
        self._task: asyncio.Task | None = None

    async def open(self, seed: Sequence[dict[str, Any]]) -> None:
        if await self.store.seed(list(seed)):
            log.info("rulebook seeded from the rules file", extra={"rules": len(seed)})
        await self.reload()
        if self._task is None:  # start() may be retried after a failure
            self._task = asyncio.create_task(self._follow(), name="ingest-rulebook")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def reload(self) -> None:
        revision, stored = await self.store.load()
        rules = []
        for s in stored:
            try:
                rules.append(parse_rule(s.definition, f"rule {s.name!r}"))
            except RuleError:  # only if a later build tightened the checks: keep serving the rest
                log.exception("stored rule no longer valid; skipped", extra={"rule": s.name})
        self.rules, self.revision = rules, revision
        self.on_change(rules)
        log.info("rulebook loaded", extra={"revision": revision, "rules": len(rules)})

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if await self.store.revision() != self.revision:
                    await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database is away: keep the rules in force, try again
                log.warning("rulebook poll failed", exc_info=True)

    # -- administration (RuleService) --

    async def create(self, rule: Rule, definition: dict[str, Any], subject: str) -> int:
        try:
            revision = await self.store.create(rule.name, definition, subject)
        except Exists:
            raise AlreadyExists(f"a rule named {rule.name!r} exists") from None
        await self.reload()  # this replica at once; the others within POLL_SECONDS
        return revision

    async def update(self, rule: Rule, definition: dict[str, Any], subject: str, expected_revision: int) -> int:
        try:
            revision = await self.store.update(rule.name, definition, subject, expected_revision)
        except Missing:
            raise NotFound(f"no rule named {rule.name!r}") from None
        except Stale as exc:
            raise FailedPrecondition(
                f"rule {rule.name!r} changed since revision {expected_revision} (now {exc.revision})") from None
        await self.reload()
        return revision

    async def changes(self, name: str | None, before_revision: int, limit: int) -> list[Change]:
        return await self.store.changes(name, before_revision, limit)

    async def dry_run(self, rule: Rule, lookback: float, max_players: int) -> DryRun:
        start = datetime.now(timezone.utc) - timedelta(seconds=lookback)
        action_type = rule.action_type or None

        async def windowed(measure: str, window: float, limit: float) -> DryRun:
            result = await self.store.replay_windowed(measure, start, action_type, window, limit, max_players)
            return DryRun(start, limit, result)

        async def impossible(c: Impossible) -> DryRun:
            result = await self.store.replay_impossible(start, action_type, c.min_value, c.max_value, max_players)
            return DryRun(start, c.max_value if c.max_value is not None else c.min_value, result)

        async def baseline(c: Baseline) -> DryRun:
            base = await self.store.percentile(c.percentile, c.baseline_window, action_type)
            if base.value is None or base.population < c.min_population:
                return DryRun(start, 0.0, dry_sql.Result([], 0, base.population))
            return await windowed("count", c.window, baseline_limit(c, base.value / base.span))  # as detection

        return await dispatch(rule.condition, rate=lambda c: windowed("count", c.window, float(c.max_count)),
                              value=lambda c: windowed(c.aggregate, c.window, c.threshold),
                              impossible=impossible, baseline=baseline)

"""alert_rules and alerts tables."""

from __future__ import annotations

import datetime as dt

import asyncpg

from services.runtime import NotFound
from services.runtime.store_errors import guard

from ..models import Alert, AlertRule
from . import STORE

_R = ("id, name, building_id, floor, room, severity, kind, sensor_type, comparison, threshold, clear_threshold,"
      " margin_percent, min_duration_ms, enabled, created_at")
_A = ("id, rule_id, building_id, floor, room, sensor_type, severity, state, message, trigger_value, threshold,"
      " fired_at, acknowledged_at, acknowledged_by, acknowledge_note, cleared_at")


def _rule(r: asyncpg.Record) -> AlertRule:
    return AlertRule(r["id"], r["name"], r["building_id"], r["floor"], r["room"], r["severity"], r["kind"],
                     r["sensor_type"], r["comparison"], r["threshold"], r["clear_threshold"], r["margin_percent"],
                     r["min_duration_ms"], r["enabled"], r["created_at"])


def _alert(r: asyncpg.Record) -> Alert:
    return Alert(r["id"], r["rule_id"], r["building_id"], r["floor"], r["room"], r["sensor_type"], r["severity"],
                 r["state"], r["message"], r["trigger_value"], r["threshold"], r["fired_at"], r["acknowledged_at"],
                 r["acknowledged_by"], r["acknowledge_note"], r["cleared_at"])


@guard(STORE)
class AlertStore:
    def __init__(self, pool) -> None:
        self._pool = pool

    async def insert_rule(self, r: AlertRule) -> AlertRule:
        try:
            row = await self._pool.pool.fetchrow(
                f"INSERT INTO alert_rules (name, building_id, floor, room, severity, kind, sensor_type, comparison,"
                f" threshold, clear_threshold, margin_percent, min_duration_ms, enabled)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {_R}",
                r.name, r.building_id, r.floor, r.room, r.severity, r.kind, r.sensor_type, r.comparison, r.threshold,
                r.clear_threshold, r.margin_percent, r.min_duration_ms, r.enabled)
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"building {r.building_id} not found") from None
        return _rule(row)

    async def list_rules(self, building_id: int, after_id: int, limit: int) -> list[AlertRule]:
        rows = await self._pool.pool.fetch(
            f"SELECT {_R} FROM alert_rules WHERE id > $1 AND ($2::bigint = 0 OR building_id = $2) ORDER BY id LIMIT $3",
            after_id, building_id, limit)
        return [_rule(r) for r in rows]

    async def enabled_rules(self) -> list[AlertRule]:
        return [_rule(r) for r in await self._pool.pool.fetch(f"SELECT {_R} FROM alert_rules WHERE enabled ORDER BY id")]

    async def delete_rule(self, rule_id: int) -> list[int]:
        """Deletes the rule; returns the ids of its open alerts, now cleared."""
        async with self._pool.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval("DELETE FROM alert_rules WHERE id = $1 RETURNING id", rule_id) is None:
                raise NotFound(f"alert rule {rule_id} not found")
            rows = await conn.fetch(
                "UPDATE alerts SET state = 3, cleared_at = now() WHERE rule_id = $1 AND state IN (1, 2) RETURNING id",
                rule_id)
        return [r["id"] for r in rows]

    async def open_alerts(self) -> dict[tuple[int, str, str], Alert]:
        rows = await self._pool.pool.fetch(f"SELECT {_A} FROM alerts WHERE state IN (1, 2)")
        return {(r["rule_id"], r["floor"], r["room"]): _alert(r) for r in rows}

    async def fire(self, rule: AlertRule, floor: str, room: str, message: str, value: float, threshold: float,
                   fired_at: dt.datetime) -> Alert | None:
        """Opens an alert; None if one is already open for the rule and series (another evaluator won)."""
        row = await self._pool.pool.fetchrow(
            f"INSERT INTO alerts (rule_id, building_id, floor, room, sensor_type, severity, state, message,"
            f" trigger_value, threshold, fired_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10)"
            f" ON CONFLICT (rule_id, floor, room) WHERE state IN (1, 2) DO NOTHING RETURNING {_A}",
            rule.rule_id, rule.building_id, floor, room, rule.sensor_type, rule.severity, message, value, threshold,
            fired_at)
        return None if row is None else _alert(row)

    async def clear(self, alert_id: int, cleared_at: dt.datetime) -> Alert | None:
        row = await self._pool.pool.fetchrow(
            f"UPDATE alerts SET state = 3, cleared_at = $2 WHERE id = $1 AND state IN (1, 2) RETURNING {_A}",
            alert_id, cleared_at)
        return None if row is None else _alert(row)

    async def acknowledge(self, alert_id: int, by: str, note: str) -> tuple[Alert | None, int | None]:
        """(acknowledged alert, None) or (None, current state) when it was not FIRING (state None: absent)."""
        async with self._pool.pool.acquire() as conn, conn.transaction():
            state = await conn.fetchval("SELECT state FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
            if state != 1:
                return None, state
            row = await conn.fetchrow(
                f"UPDATE alerts SET state = 2, acknowledged_at = now(), acknowledged_by = $2, acknowledge_note = $3"
                f" WHERE id = $1 RETURNING {_A}", alert_id, by, note)
        return _alert(row), None

    async def list_alerts(self, building_id: int, states: list[int], start: dt.datetime | None,
                          end: dt.datetime | None, after: tuple[dt.datetime, int] | None, limit: int) -> list[Alert]:
        rows = await self._pool.pool.fetch(
            f"SELECT {_A} FROM alerts WHERE ($1::bigint = 0 OR building_id = $1)"
            f" AND (cardinality($2::smallint[]) = 0 OR state = ANY($2::smallint[]))"
            f" AND ($3::timestamptz IS NULL OR fired_at >= $3) AND ($4::timestamptz IS NULL OR fired_at < $4)"
            f" AND ($5::timestamptz IS NULL OR (fired_at, id) < ($5, $6))"
            f" ORDER BY fired_at DESC, id DESC LIMIT $7",
            building_id, states, start, end, after[0] if after else None, after[1] if after else 0, limit)
        return [_alert(r) for r in rows]

    async def unpublished(self, limit: int = 100) -> list[Alert]:
        rows = await self._pool.pool.fetch(
            f"SELECT {_A}, fire_published, clear_published FROM alerts"
            f" WHERE NOT fire_published OR (state = 3 AND NOT clear_published) ORDER BY id LIMIT $1", limit)
        return [(_alert(r), r["fire_published"]) for r in rows]

    async def mark_published(self, alert_id: int, clear: bool) -> None:
        column = "clear_published" if clear else "fire_published"
        await self._pool.pool.execute(f"UPDATE alerts SET {column} = true WHERE id = $1", alert_id)

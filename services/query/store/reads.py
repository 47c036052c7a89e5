"""The query service's reads: run a statement from ``sql``, return domain values."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from .. import model
from ..windows import Split, split
from . import Session, sql

#: Bucket width of each aggregate (fixed by the schema contract).
ROLLUP_WIDTHS = {"action_stats_1min": timedelta(minutes=1), "action_stats_1h": timedelta(hours=1),
                 "action_type_stats_1min": timedelta(minutes=1), "action_type_stats_1h": timedelta(hours=1)}


def _bounds(split: Split) -> dict[str, datetime]:
    return dict(zip(("b0", "b1", "b2", "b3", "b4", "b5"), split.params()))


async def sketches(s: Session) -> bool:
    """True when distinct players come from HLL sketches (approximate), False: exact sets."""
    return (await s.fetchrow(sql.SKETCHES))["hll"]


async def window_totals(s: Session, split: Split, hll: bool) -> tuple[int, int]:
    """(actions, distinct players) in the window."""
    row = await s.fetchrow(sql.window_totals(hll), _bounds(split))
    return row["actions"], row["players"]


async def top_players(s: Session, split: Split, action_type: str, after: tuple[int, str] | None,
                      limit: int) -> model.Ranked:
    """(player_id, action_count, last_activity) ranked, after the keyset ``after``, with the bound."""
    count, player = after if after is not None else (2**63 - 1, "")
    values = {**_bounds(split), "action_type": action_type, "after_count": count,
              "after_player": player, "limit": limit}
    rows = await s.fetch(sql.top_players(bool(action_type)), values)
    meta = {r["kind"]: r["action_count"] for r in rows if r["kind"]}
    return model.Ranked([(r["player_id"], r["action_count"], r["last_activity"]) for r in rows if not r["kind"]],
                        unlisted_max=meta[1], exact_ranks=meta[2])


async def hourly_load(s: Session, split: Split, hll: bool) -> dict[datetime, tuple[int, int]]:
    rows = await s.fetch(sql.hourly_load(hll), _bounds(split))
    return {r["hour"]: (r["actions"], r["players"]) for r in rows}


async def player_activity(s: Session, player_id: str, start: datetime, end: datetime) -> list[model.MinuteActivity]:
    rows = await s.fetch(sql.PLAYER_ACTIVITY, {"player_id": player_id, "start": start, "end": end})
    return [model.MinuteActivity(r["minute"], r["actions"], r["value_sum"]) for r in rows]


def _hours(since: datetime, until: datetime) -> dict[str, datetime]:
    """The window and its whole UTC hours [h0, h1) (h0 == h1 when there are none)."""
    w = split(since, until)
    return {"since": since, "until": until, "h0": w.b2, "h1": w.b3}


async def violations_by_rule(s: Session, since: datetime, until: datetime, limit: int) -> list[model.RuleCount]:
    rows = await s.fetch(sql.VIOLATIONS_BY_RULE, {**_hours(since, until), "limit": limit})
    return [model.RuleCount(r["rule"], r["severity"], r["count"]) for r in rows]


async def violations_by_severity(s: Session, since: datetime, until: datetime) -> dict[int, int]:
    rows = await s.fetch(sql.VIOLATIONS_BY_SEVERITY, _hours(since, until))
    return {r["severity"]: r["count"] for r in rows}


async def player_totals(s: Session, as_of: datetime) -> tuple[int, int]:
    """(players ever seen, players banned at ``as_of``)."""
    row = await s.fetchrow(sql.PLAYER_TOTALS, {"as_of": as_of})
    return row["total"], row["banned"]


async def player_summary(s: Session, player_id: str, as_of: datetime) -> model.PlayerSummary | None:
    r = await s.fetchrow(sql.PLAYER_SUMMARY, {"player_id": player_id, "as_of": as_of})
    if r is None:
        return None
    return model.PlayerSummary(
        player_id=r["player_id"], total_actions=r["action_count"] or 0, total_violations=r["violation_count"] or 0,
        risk_score=r["risk_score"] or 0.0, highest_severity=r["highest_severity"] or 0,
        first_seen=r["first_seen"], last_seen=r["last_seen"], banned=r["banned"])


def _json(value):
    """jsonb arrives as JSON text from asyncpg (already decoded from some other drivers)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _violation(r) -> model.Violation:
    evidence = _json(r["evidence"]) if r["evidence"] is not None else {}
    return model.Violation(
        id=r["id"], detected_at=r["detected_at"], player_id=r["player_id"], rule=r["rule"],
        severity=r["severity"], evidence=evidence if isinstance(evidence, dict) else {"value": evidence},
        window_start=r["window_start"], window_end=r["window_end"], ban_requested=bool(r["ban_requested"]))


async def recent_violations(s: Session, player_id: str, limit: int) -> list[model.Violation]:
    rows = await s.fetch(sql.RECENT_VIOLATIONS, {"player_id": player_id, "limit": limit})
    return [_violation(r) for r in rows]


async def violations(s: Session, *, start: datetime | None, end: datetime | None, player_id: str, rule: str,
                     severities: tuple[int, ...], after: tuple[datetime, int] | None,
                     limit: int) -> list[model.Violation]:
    stmt = sql.violations(start is not None, bool(player_id), bool(rule), bool(severities), after is not None)
    values = {"start": start, "end": end, "player_id": player_id, "rule": rule, "severities": list(severities),
              "c_detected_at": after[0] if after else None, "c_id": after[1] if after else None, "limit": limit}
    return [_violation(r) for r in await s.fetch(stmt, values)]


ActionKey = tuple[datetime, str, float, str, str]  # time, action_type, value, event_id, md5(metadata)


async def player_actions(s: Session, *, player_id: str, start: datetime, end: datetime, action_type: str,
                         after: ActionKey | None, limit: int) -> list[tuple[ActionKey, model.Action]]:
    """Newest first; with ``after``, rows from the cursor key on (inclusive)."""
    stmt = sql.player_actions(bool(action_type), after is not None)
    values = {"player_id": player_id, "start": start, "end": end, "action_type": action_type, "limit": limit}
    if after is not None:
        values.update(zip(("c_time", "c_type", "c_value", "c_event", "c_md5"), after))
    out = []
    for r in await s.fetch(stmt, values):
        key = (r["time"], r["action_type"], r["value"], r["event_id"], r["metadata_md5"])
        metadata = _json(r["metadata"]) if r["metadata"] is not None else None
        out.append((key, model.Action(r["time"], r["action_type"], r["value"],
                                      metadata if isinstance(metadata, dict) else None, r["event_id"])))
    return out


# --- storage --------------------------------------------------------------------------------
async def timescaledb_version(s: Session) -> str:
    return (await s.fetchrow(sql.TIMESCALEDB_VERSION))["version"] or ""


async def uses_hypertables(s: Session) -> bool:
    return (await s.fetchrow(sql.HYPERTABLE_BACKEND))["hyper"]


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


_KINDS = {"policy_retention": "retention", "policy_compression": "compression",
          "policy_refresh_continuous_aggregate": "refresh"}


def _run_status(last: str | None, job: str | None) -> str:
    if (job or "").lower() == "running":
        return "running"
    return {"success": "success", "failed": "failed"}.get((last or "").lower(), "")


async def storage(s: Session, *, timescale: bool, version: str, as_of: datetime,
                  chunk_limit: int) -> model.StorageStats:
    tables = {"tables": list(sql.OWN_TABLES)}
    if timescale:
        sizes = await s.fetch(sql.TABLE_SIZES_TIMESCALE, tables)
        hypers = await s.fetch(sql.HYPERTABLES_TIMESCALE)
        chunks = await s.fetch(sql.CHUNKS_TIMESCALE, {"limit": chunk_limit})
        policies = [
            model.PolicyStatus(
                job_id=r["job_id"], kind=_KINDS[r["proc_name"]], target=r["target"],
                schedule_interval=_seconds(r["schedule_seconds"]), threshold=_seconds(r["threshold_seconds"]),
                end_offset=_seconds(r["end_offset_seconds"]), enabled=bool(r["enabled"]),
                last_run_time=r["last_run_time"], last_run_status=_run_status(r["last_run_status"], r["job_status"]),
                next_run_time=r["next_run_time"], total_failures=r["total_failures"])
            for r in await s.fetch(sql.POLICIES_TIMESCALE)]
        aggregates = [
            model.AggregateStatus(r["view"], ROLLUP_WIDTHS.get(r["name"], timedelta(0)),
                                  r["materialized_through"], bool(r["real_time"]))
            for r in await s.fetch(sql.CAGGS_TIMESCALE)]
    else:
        sizes = await s.fetch(sql.TABLE_SIZES_PLAIN, tables)
        hypers = await s.fetch(sql.HYPERTABLES_PLAIN, tables)
        chunks = await s.fetch(sql.CHUNKS_PLAIN, {**tables, "limit": chunk_limit})
        # Ingest records no job runs on plain PostgreSQL, so there is no policy status to report.
        policies = []
        # Rollup tables are upserted in the write transaction: complete up to the snapshot.
        aggregates = [model.AggregateStatus(r["view"], ROLLUP_WIDTHS[r["name"]], as_of, True)
                      for r in await s.fetch(sql.CAGGS_PLAIN)]
    return model.StorageStats(
        timescaledb_version=version, backend="timescaledb" if timescale else "postgresql",
        tables=[model.TableSize(**dict(r)) for r in sizes],
        hypertables=[model.HypertableStats(**dict(r)) for r in hypers],
        chunks=[model.ChunkStats(**dict(r)) for r in chunks],
        policies=policies, aggregates=aggregates, as_of=as_of)

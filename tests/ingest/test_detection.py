"""Each detection rule firing and not firing, evaluated after commit against the database.

Rules run in name order after each committed group; ``z_sentinel`` (rules.test.json) runs last, so
once a group's sentinel violation is stored, every rule has been evaluated for that group.
"""

from __future__ import annotations

import json
from datetime import timedelta

from banhammer.ingest.v1 import ingest_pb2

from .conftest import player
from .helpers import action, eventually, folded, now


async def send_and_settle(stub, db, actions: list) -> None:
    """Send ``actions`` plus a sentinel in one batch; return once the group's detection is done."""
    marker = player("sentinel")
    await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=[*actions, action(marker, "t_sentinel", 1.0)]))

    async def seen():
        return await db.fetchval("SELECT count(*) FROM violations_ts WHERE player_id = $1", marker)

    await eventually(seen, "the sentinel violation")


async def violations(db, pid: str, rule: str | None = None) -> list:
    return await db.fetch("SELECT * FROM violations_ts WHERE player_id = $1 AND ($2::text IS NULL OR rule = $2) "
                          "ORDER BY id", pid, rule)


async def test_rate_rule(stub, db):
    cheat, fair = player(), player()
    t = now()
    await send_and_settle(stub, db, [action(cheat, "t_rate", at=t - timedelta(seconds=i)) for i in range(6)]
                          + [action(fair, "t_rate", at=t - timedelta(seconds=i)) for i in range(5)]
                          # old actions of the fair player: outside the 60 s window
                          + [action(fair, "t_rate", at=t - timedelta(minutes=10, seconds=i)) for i in range(5)])
    [v] = await violations(db, cheat)
    assert (v["rule"], v["severity"], v["ban_requested"]) == ("t_rate", 3, False)
    evidence = json.loads(v["evidence"])
    assert (evidence["count"], evidence["limit"], evidence["action_type"]) == (6, 5, "t_rate")
    assert v["window_end"] - v["window_start"] == timedelta(seconds=60)
    assert await violations(db, fair) == []
    await folded(db)
    summary = await db.fetchrow("SELECT * FROM player_summary WHERE player_id = $1", cheat)
    assert summary["violation_count"] == 1 and abs(summary["risk_score"] - 0.4) < 1e-9
    assert summary["last_violation_at"] == v["detected_at"]
    # A player without violations has no summary row: its activity is in player_hours.
    assert await db.fetchrow("SELECT * FROM player_summary WHERE player_id = $1", fair) is None
    assert await db.fetchval("SELECT sum(actions) FROM player_hours WHERE player_id = $1", fair) == 10


async def test_rate_rule_cooldown_suppresses_repeats(stub, db):
    cheat = player()
    await send_and_settle(stub, db, [action(cheat, "t_rate") for _ in range(6)])
    await send_and_settle(stub, db, [action(cheat, "t_rate") for _ in range(6)])
    assert len(await violations(db, cheat, "t_rate")) == 1  # cooldown = the rule's window (60 s)


async def test_value_sum_rule(stub, db):
    cheat, fair = player(), player()
    await send_and_settle(stub, db, [action(cheat, "t_value", 400.0) for _ in range(3)]
                          + [action(fair, "t_value", 500.0) for _ in range(2)])  # sum 1000 is not above
    [v] = await violations(db, cheat)
    evidence = json.loads(v["evidence"])
    assert (v["rule"], evidence["aggregate"], evidence["value"], evidence["limit"]) == ("t_sum", "sum", 1200, 1000)
    assert await violations(db, fair) == []


async def test_value_max_rule(stub, db):
    cheat, fair = player(), player()
    await send_and_settle(stub, db, [action(cheat, "t_peak", 10.0), action(cheat, "t_peak", 501.0),
                                     action(fair, "t_peak", 500.0), action(fair, "t_peak", 499.0)])
    [v] = await violations(db, cheat)
    assert (v["rule"], json.loads(v["evidence"])["value"]) == ("t_max", 501)
    assert await violations(db, fair) == []


async def test_impossible_value_rule(stub, db):
    low, high, fair = player(), player(), player()
    await send_and_settle(stub, db, [action(low, "t_impossible", -1.0), action(high, "t_impossible", 100.5),
                                     action(fair, "t_impossible", 0.0), action(fair, "t_impossible", 100.0),
                                     action(fair, "other_type", 1e9)])
    [lv] = await violations(db, low)
    [hv] = await violations(db, high)
    assert (lv["rule"], lv["severity"], json.loads(lv["evidence"])["value"]) == ("t_impossible", 4, -1)
    assert json.loads(hv["evidence"]) == {"value": 100.5, "max_value": 100, "action_type": "t_impossible"}
    assert await violations(db, fair) == []


async def test_impossible_value_of_a_duplicate_is_not_a_new_violation(stub, db):
    cheat = player()
    bad = action(cheat, "t_impossible", 1000.0, event_id="once")
    await send_and_settle(stub, db, [bad])
    await send_and_settle(stub, db, [bad])  # a retry stores nothing, so it detects nothing
    assert len(await violations(db, cheat)) == 1


async def test_baseline_rule_compares_with_the_population(stub, db):
    """90th percentile of per-player counts in the last hour, times 2 (rules.test.json)."""
    population = [player("pop") for _ in range(25)]
    await send_and_settle(stub, db, [action(p, "t_baseline") for p in population for _ in range(2)])
    assert await db.fetchval("SELECT count(*) FROM violations_ts WHERE player_id = ANY($1)", population) == 0
    cheat, busy = player(), player()
    # Population counts: 25 x 2, then 2 and 20: p90 = 2 over the hours the 1 h window touches (a
    # span S of 1-2 h), so the limit for the window is 2 x 2 x 3600/S, between 2 and 4 (never under
    # the multiplier): 20 fires wherever the clock is in the hour, 2 never does.
    await send_and_settle(stub, db, [action(cheat, "t_baseline") for _ in range(20)]
                          + [action(busy, "t_baseline") for _ in range(2)])
    [v] = await violations(db, cheat)
    evidence = json.loads(v["evidence"])
    assert v["rule"] == "t_baseline"
    assert evidence["count"] == 20 and evidence["population"] >= 27 and 2 <= evidence["limit"] <= 4 and evidence["percentile"] == 90
    # The hourly counts cover the hours the window touches: between one and two hours.
    assert 3600 <= evidence["baseline_seconds"] <= 7200
    assert abs(evidence["percentile_rate"] - 2 / evidence["baseline_seconds"]) < 1e-6
    assert await violations(db, busy) == []


async def test_baseline_rule_short_window_needs_more_than_multiplier_actions(stub, db):
    """p90 = 1 action per hour, scaled to a 60 s window x2 is 0.03 actions: without a floor a single
    action "exceeds" it and every active player is flagged. The floor is ``multiplier`` (2) actions."""
    population = [player("short") for _ in range(25)]
    await send_and_settle(stub, db, [action(p, "t_short") for p in population])
    assert await db.fetchval("SELECT count(*) FROM violations_ts WHERE player_id = ANY($1)", population) == 0
    cheat, busy = player(), player()
    await send_and_settle(stub, db, [action(cheat, "t_short") for _ in range(3)]
                          + [action(busy, "t_short") for _ in range(2)])
    [v] = await violations(db, cheat, "t_short")
    assert json.loads(v["evidence"])["count"] == 3
    assert await violations(db, busy) == []

"""Detection rules managed at runtime (RuleService): seeded from the rules file, validated with field
paths, audited, picked up by another replica without a restart, and dry-run over stored actions."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import duration_pb2

import asyncpg
import pytest_asyncio

from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc, rules_pb2, rules_pb2_grpc
from services.ingest.store import run_migrations
from services.runtime.server import start_runtime
from tests.harness import wait_serving

from .conftest import ingest_env, player
from .helpers import action, eventually, field_violations, status_of
from .test_detection import send_and_settle, violations

ALICE = (("x-banhammer-subject", "ops-alice"),)


def _name() -> str:
    return f"r_{uuid.uuid4().hex[:10]}"


def rate_rule(name: str, action_type: str, max_count: int = 3, enabled: bool = True) -> ingest_pb2.DetectionRule:
    return ingest_pb2.DetectionRule(
        name=name, description="test", enabled=enabled, severity=3, action_type=action_type,
        rate=ingest_pb2.RateCondition(window=duration_pb2.Duration(seconds=60), max_count=max_count))


# A database of its own: the rules created here must not show up in other tests' rule lists.
@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def migrated_dsn(new_database) -> str:
    dsn = new_database("rulebook")
    await run_migrations(dsn, 7)
    return dsn


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def runtime(migrated_dsn):
    runtime = await start_runtime(["ingest"], environ=ingest_env(migrated_dsn))
    await wait_serving(f"127.0.0.1:{runtime.port}", "banhammer.ingest.v1.IngestService", timeout=30)
    yield runtime
    await runtime.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def channel(runtime):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        yield channel


@pytest.fixture
def rules(channel):
    return rules_pb2_grpc.RuleServiceStub(channel)


@pytest.fixture
def stub(channel):
    return ingest_pb2_grpc.IngestServiceStub(channel)


@pytest_asyncio.fixture(loop_scope="session")
async def db(migrated_dsn):
    conn = await asyncpg.connect(migrated_dsn)
    yield conn
    await conn.close()


async def test_rulebook_is_seeded_from_the_rules_file(rules, stub):
    changes = (await rules.ListRuleChanges(rules_pb2.ListRuleChangesRequest(page_size=500))).changes
    seeded = {c.name for c in changes if c.subject == "seed"}
    assert {"t_rate", "t_sum", "z_sentinel"} <= seeded
    assert all(c.kind == rules_pb2.RULE_CHANGE_KIND_CREATE for c in changes if c.subject == "seed")


async def test_invalid_rules_name_the_field(rules):
    bad = rate_rule(_name(), "x")
    bad.rate.window.seconds = 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rules.CreateRule(rules_pb2.CreateRuleRequest(rule=bad))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(status_of(err.value))) == ["rule.rate.window"]

    nameless = rate_rule("Not-Snake", "x")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rules.CreateRule(rules_pb2.CreateRuleRequest(rule=nameless))
    assert list(field_violations(status_of(err.value))) == ["rule.name"]

    no_condition = ingest_pb2.DetectionRule(name=_name(), severity=2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rules.CreateRule(rules_pb2.CreateRuleRequest(rule=no_condition))
    assert list(field_violations(status_of(err.value))) == ["rule.condition"]


async def test_created_rule_fires_on_the_next_action_and_is_audited(rules, stub, db):
    name, kind = _name(), f"t_{uuid.uuid4().hex[:8]}"
    created = await rules.CreateRule(rules_pb2.CreateRuleRequest(rule=rate_rule(name, kind)), metadata=ALICE)
    assert created.revision > 0 and created.rule.name == name
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rules.CreateRule(rules_pb2.CreateRuleRequest(rule=rate_rule(name, kind)))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS

    cheat = player()
    await send_and_settle(stub, db, [action(cheat, kind) for _ in range(4)])
    [v] = await violations(db, cheat, name)
    assert v["severity"] == 3

    [change] = (await rules.ListRuleChanges(rules_pb2.ListRuleChangesRequest(name=name))).changes
    assert (change.revision, change.subject, change.kind) == (created.revision, "ops-alice",
                                                               rules_pb2.RULE_CHANGE_KIND_CREATE)
    assert change.after.rate.max_count == 3 and not change.HasField("before")


async def test_update_disables_a_rule_and_checks_the_revision(rules, stub, db):
    name, kind = _name(), f"t_{uuid.uuid4().hex[:8]}"
    created = await rules.CreateRule(rules_pb2.CreateRuleRequest(rule=rate_rule(name, kind)))
    updated = await rules.UpdateRule(rules_pb2.UpdateRuleRequest(
        rule=rate_rule(name, kind, enabled=False), expected_revision=created.revision))
    assert updated.revision > created.revision and not updated.rule.enabled
    with pytest.raises(grpc.aio.AioRpcError) as err:  # the caller saw the creation, not the update
        await rules.UpdateRule(rules_pb2.UpdateRuleRequest(rule=rate_rule(name, kind), expected_revision=created.revision))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rules.UpdateRule(rules_pb2.UpdateRuleRequest(rule=rate_rule(_name(), kind)))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    quiet = player()
    await send_and_settle(stub, db, [action(quiet, kind) for _ in range(6)])
    assert await violations(db, quiet, name) == []

    listed = await stub.ListRules(ingest_pb2.ListRulesRequest(include_disabled=True, page_size=500))
    assert [r.enabled for r in listed.rules if r.name == name] == [False]
    [change, _] = (await rules.ListRuleChanges(rules_pb2.ListRuleChangesRequest(name=name))).changes
    assert change.kind == rules_pb2.RULE_CHANGE_KIND_UPDATE and change.before.enabled and not change.after.enabled


async def test_another_replica_picks_up_a_change_without_restart(rules, migrated_dsn):
    other = await start_runtime(["ingest"], environ=ingest_env(migrated_dsn))
    try:
        await wait_serving(f"127.0.0.1:{other.port}", "banhammer.ingest.v1.IngestService", timeout=30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as channel:
            other_stub = ingest_pb2_grpc.IngestServiceStub(channel)
            name = _name()
            await rules.CreateRule(rules_pb2.CreateRuleRequest(rule=rate_rule(name, "t_other")))

            async def listed():
                try:
                    return (await other_stub.GetRule(ingest_pb2.GetRuleRequest(name=name))).rule
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    return None

            rule = await eventually(listed, "the other replica's copy of the new rule", timeout=15)
            assert rule.rate.max_count == 3
    finally:
        await other.stop()


async def test_dry_run_flags_only_players_the_rule_would_have(rules, stub, db):
    kind = f"t_{uuid.uuid4().hex[:8]}"
    cheat, fair = player(), player()
    await stub.RecordActions(ingest_pb2.RecordActionsRequest(
        actions=[action(cheat, kind) for _ in range(7)] + [action(fair, kind) for _ in range(2)]))
    run = await rules.DryRunRule(rules_pb2.DryRunRuleRequest(rule=rate_rule(_name(), kind, max_count=4),
                                                             lookback=duration_pb2.Duration(seconds=600)))
    assert [(h.player_id, h.peak, h.limit, h.actions) for h in run.hits] == [(cheat, 7.0, 4.0, 7)]
    assert (run.flagged_count, run.players_scanned) == (1, 2)

    impossible = ingest_pb2.DetectionRule(name=_name(), severity=4, action_type=kind)
    impossible.impossible_value.max_value = 0.5
    run = await rules.DryRunRule(rules_pb2.DryRunRuleRequest(rule=impossible))
    assert run.flagged_count == 2 and {h.player_id for h in run.hits} == {cheat, fair}

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rules.DryRunRule(rules_pb2.DryRunRuleRequest(rule=impossible, lookback=duration_pb2.Duration(seconds=1)))
    assert list(field_violations(status_of(err.value))) == ["lookback"]

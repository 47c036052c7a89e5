"""Actions sent through the gateway to ingest (gRPC unary, batch and stream, and the seed's JSON)
are what query reads back through the gateway: overview counts, top players, hourly load, a player
investigation and its actions, and a rule's violation (and ban).

Only the public API is used on both sides, never SQL: ingest's internals may change freely. Ingest
and query run in their own runtime on a fresh database, so every count is exact; the session
service (auth, bans) is the shared suite's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from banhammer.query.v1 import query_pb2, query_pb2_grpc
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc
from tests.e2e.test_gateway import http
from tests.harness import auth_metadata, check_health, free_port, gateway_metadata, wait_until
from tests.harness.fixtures import OWNER_ROLE, READER_ROLE
from tests.harness.suite import Suite

P = f"rt-{uuid.uuid4().hex[:6]}"
A, B, C, D = (f"{P}-{x}" for x in "abcd")  # player_id order is rank order on ties
START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
A_VALUES = (1.0, 2.0, 3.0, 4.0, 5.0)
B_VALUES = (10.0, 20.0, 30.0)


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass
class Gateway:
    channel: grpc.Channel
    url: str
    token: str  # a "service" credential

    @property
    def metadata(self) -> tuple:
        return auth_metadata(self.token)

    def ingest(self) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(self.channel)

    def query(self) -> query_pb2_grpc.QueryServiceStub:
        return query_pb2_grpc.QueryServiceStub(self.channel)


@pytest.fixture(scope="module")
def gw(suite, pg_server, envoy_factory, gateway_tokens) -> Iterator[Gateway]:
    dsn = pg_server.new_database("roundtrip", owner=OWNER_ROLE)
    reader = pg_server.grant_read_only(dsn.rsplit("/", 1)[1], READER_ROLE, OWNER_ROLE)
    own = Suite({"GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(free_port()), "LOG_LEVEL": "WARNING",
                 "SHUTDOWN_GRACE_SECONDS": "1", "HEALTH_INTERVAL_SECONDS": "0.5", "TIMESCALEDB_URL": dsn,
                 "INGEST_MIGRATE_ON_START": "true", "QUERY_DATABASE_URL": reader,
                 "SESSION_SERVICE_ADDR": suite.addr}, targets=("ingest", "query")).start()
    try:
        envoy = envoy_factory({"ingest": own.addr, "query": own.addr, "session": suite.addr, "energy": suite.addr})
        wait_until(lambda: all(check_health(envoy.addr, "", metadata=gateway_metadata(t)) == "SERVING"
                               for t in ("ingest", "query")), 30, "ingest and query SERVING through Envoy")
        with grpc.insecure_channel(envoy.addr) as channel:
            yield Gateway(channel, envoy.url, gateway_tokens["service"])
    finally:
        own.stop()


def action(player: str, kind: str, value: float, moment: datetime | None = None, event_id: str = ""):
    return common_pb2.PlayerAction(player_id=player, action_type=kind, value=value, event_id=event_id,
                                   time=ts(moment) if moment else None)


@pytest.fixture(scope="module")
def sent(gw: Gateway) -> float:
    """Ten actions of four players, each acknowledged; returns a wall-clock time after the last ack."""
    batch = [action(A, "e2e_move", v, START + timedelta(seconds=i), f"a{i}") for i, v in enumerate(A_VALUES)]
    reply = gw.ingest().RecordActions(ingest_pb2.RecordActionsRequest(actions=batch), metadata=gw.metadata, timeout=10)
    assert (reply.accepted_count, reply.duplicate_count) == (5, 0)
    # The game server's retry of the same batch stores nothing twice.
    again = gw.ingest().RecordActions(ingest_pb2.RecordActionsRequest(actions=batch), metadata=gw.metadata, timeout=10)
    assert (again.accepted_count, again.duplicate_count) == (0, 5)

    stream = [ingest_pb2.StreamActionsRequest(sequence=1, actions=[action(B, "e2e_move", v) for v in B_VALUES])]
    acks = list(gw.ingest().StreamActions(iter(stream), metadata=gw.metadata, timeout=10))
    assert [(a.sequence, a.accepted_count, a.error.code) for a in acks] == [(1, 3, 0)]

    status, payload = http(gw.url + "/api/ts/action", {"player_id": C, "action_type": "e2e_chat", "value": 2.5},
                           gw.token)
    assert status == 200, payload
    # A reward below zero is impossible: the default rules record a CRITICAL violation and ban.
    gw.ingest().RecordAction(ingest_pb2.RecordActionRequest(action=action(D, "reward_collection", -5.0)),
                             metadata=gw.metadata, timeout=10)
    return time.time()


def poll(fetch: Callable, done: Callable, what: str, timeout: float = 30.0):
    """``fetch()`` until ``done(result)``; the last result, or AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s; last answer: {result}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def detected(gw: Gateway, sent: float) -> float:
    """The violation of D is visible; returns a wall-clock time after that."""
    poll(lambda: gw.query().GetPlayer(query_pb2.GetPlayerRequest(player_id=D), metadata=gw.metadata, timeout=10),
         lambda r: r.summary.total_violations == 1, "D's violation")
    return time.time()


def newer_than(moment: float) -> Callable:
    """A shared result (overview, top players, hourly load) computed after ``moment``."""
    return lambda stamp: stamp.ToDatetime(tzinfo=timezone.utc).timestamp() > moment


def test_overview_counts_what_was_sent(gw, detected):
    overview = poll(lambda: gw.query().GetStatsOverview(query_pb2.GetStatsOverviewRequest(), metadata=gw.metadata,
                                                        timeout=10),
                    lambda r: newer_than(detected)(r.as_of), "an overview computed after the writes")
    assert (overview.last_hour.action_count, overview.last_hour.unique_players) == (10, 4)
    assert (overview.last_day.action_count, overview.last_day.unique_players) == (10, 4)
    assert overview.total_players == 4
    assert [(v.rule, v.count) for v in overview.violations_by_rule] == [("reward_impossible", 1)]
    critical = {v.severity: v.count for v in overview.violations_by_severity}[common_pb2.SEVERITY_CRITICAL]
    assert critical == 1
    # The seed's JSON endpoint shows the same snapshot (int64 as JSON strings).
    status, payload = http(gw.url + "/api/ts/stats/overview", token=gw.token)
    assert status == 200 and json.loads(payload)["last_hour"]["action_count"] == "10", payload


def test_top_players_rank_what_was_sent(gw, detected):
    request = query_pb2.GetTopPlayersRequest(window=Duration(seconds=3600), page_size=10)
    top = poll(lambda: gw.query().GetTopPlayers(request, metadata=gw.metadata, timeout=10),
               lambda r: newer_than(detected)(r.window.end_time), "top players computed after the writes")
    assert [(p.rank, p.player_id, p.action_count) for p in top.players] == [(1, A, 5), (2, B, 3), (3, C, 1), (4, D, 1)]
    assert top.players[0].last_activity == ts(START + timedelta(seconds=4))
    chats = gw.query().GetTopPlayers(query_pb2.GetTopPlayersRequest(window=Duration(seconds=3600), action_type="e2e_chat"),
                                     metadata=gw.metadata, timeout=10)
    assert [(p.player_id, p.action_count) for p in chats.players] == [(C, 1)]


def test_hourly_load_sums_to_what_was_sent(gw, detected):
    load = poll(lambda: gw.query().GetHourlyLoad(query_pb2.GetHourlyLoadRequest(hours=2), metadata=gw.metadata,
                                                 timeout=10),
                lambda r: newer_than(detected)(r.as_of), "hourly load computed after the writes")
    assert len(load.hours) == 2
    assert sum(h.action_count for h in load.hours) == 10
    assert 1 <= max(h.unique_players for h in load.hours) <= 4


def test_player_investigation_shows_the_actions(gw, sent):
    reply = gw.query().GetPlayer(query_pb2.GetPlayerRequest(player_id=A), metadata=gw.metadata, timeout=10)
    summary = reply.summary
    assert (summary.player_id, summary.total_actions, summary.total_violations) == (A, 5, 0)
    assert (summary.first_seen, summary.last_seen) == (ts(START), ts(START + timedelta(seconds=4)))
    assert sum(m.action_count for m in reply.activity) == 5
    assert sum(m.value_sum for m in reply.activity) == sum(A_VALUES)

    actions = gw.query().ListPlayerActions(
        query_pb2.ListPlayerActionsRequest(player_id=B, time_range=common_pb2.TimeRange(
            start_time=ts(START - timedelta(minutes=1)))), metadata=gw.metadata, timeout=10).actions
    assert sorted(a.value for a in actions) == sorted(B_VALUES)
    assert all(a.player_id == B and a.action_type == "e2e_move" for a in actions)
    assert [a.time.ToNanoseconds() for a in actions] == sorted((a.time.ToNanoseconds() for a in actions), reverse=True)

    status, payload = http(gw.url + f"/api/ts/players/{C}", token=gw.token)
    assert status == 200 and json.loads(payload)["summary"]["total_actions"] == "1", payload


def test_a_rule_violation_is_investigated_and_banned(gw, detected):
    reply = gw.query().GetPlayer(query_pb2.GetPlayerRequest(player_id=D), metadata=gw.metadata, timeout=10)
    assert reply.summary.highest_severity == common_pb2.SEVERITY_CRITICAL
    assert [(v.player_id, v.rule) for v in reply.recent_violations] == [(D, "reward_impossible")]
    bans = ban_pb2_grpc.BanServiceStub(gw.channel)
    poll(lambda: bans.IsBanned(ban_pb2.IsBannedRequest(subject=D), metadata=gw.metadata, timeout=10),
         lambda r: r.banned, "D banned by the rule")

"""gRPC servicer for banhammer.ingest.v1.RuleService: checks and converts, the rulebook decides."""

from __future__ import annotations

from datetime import timedelta

from google.protobuf import timestamp_pb2

from banhammer.ingest.v1 import ingest_pb2, rules_pb2, rules_pb2_grpc
from services.runtime import pagination
from services.runtime.gateway_headers import identity
from services.runtime.validation import INT64_MAX, Violations

from . import rule_messages
from .rulebook import Rulebook
from .rules import parse_rule
from .servicer import rule_message

_KINDS = {"create": rules_pb2.RULE_CHANGE_KIND_CREATE, "update": rules_pb2.RULE_CHANGE_KIND_UPDATE}
_LIST = "ingest.ListRuleChanges"


def _timestamp(dt) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt)
    return ts


def _subject(context) -> str:
    # Only the gateway sets it (and strips it from callers); without one the change is still recorded.
    return identity(context).subject or "anonymous"


def _stored(definition) -> ingest_pb2.DetectionRule | None:
    return None if definition is None else rule_message(parse_rule(definition, "stored rule"))


class RuleServicer(rules_pb2_grpc.RuleServiceServicer):
    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook

    async def CreateRule(self, request: rules_pb2.CreateRuleRequest, context) -> rules_pb2.CreateRuleResponse:
        rule, definition = rule_messages.parse(request.rule)
        revision = await self.rulebook.create(rule, definition, _subject(context))
        return rules_pb2.CreateRuleResponse(rule=rule_message(rule), revision=revision)

    async def UpdateRule(self, request: rules_pb2.UpdateRuleRequest, context) -> rules_pb2.UpdateRuleResponse:
        v = Violations()
        v.integer("expected_revision", request.expected_revision, 0, INT64_MAX)
        v.raise_if_any()
        rule, definition = rule_messages.parse(request.rule)
        revision = await self.rulebook.update(rule, definition, _subject(context), request.expected_revision)
        return rules_pb2.UpdateRuleResponse(rule=rule_message(rule), revision=revision)

    async def DryRunRule(self, request: rules_pb2.DryRunRuleRequest, context) -> rules_pb2.DryRunRuleResponse:
        v = Violations()
        lookback = timedelta(hours=1)
        if request.HasField("lookback"):
            lookback = v.duration("lookback", request.lookback, timedelta(minutes=1), timedelta(hours=24)) or lookback
        max_players = v.page_size("max_players", request.max_players, 50, 500)
        v.raise_if_any()
        rule, _ = rule_messages.parse(request.rule)
        run = await self.rulebook.dry_run(rule, lookback.total_seconds(), max_players)
        return rules_pb2.DryRunRuleResponse(
            hits=[rules_pb2.DryRunHit(player_id=h.player_id, peak=h.peak, limit=run.limit, actions=h.actions,
                                      first_time=_timestamp(h.first_time)) for h in run.result.hits],
            flagged_count=run.result.flagged, players_scanned=run.result.scanned, start_time=_timestamp(run.start))

    async def ListRuleChanges(self, request: rules_pb2.ListRuleChangesRequest,
                              context) -> rules_pb2.ListRuleChangesResponse:
        v = Violations()
        if request.name:
            v.text("name", request.name, 1, 64)
        size = v.page_size("page_size", request.page_size, 50, 500)
        filters = {"name": request.name}
        cursor = v.page_token(request.page_token, _LIST, filters)
        v.raise_if_any()
        before = pagination.integer(cursor.get("before"), 1) if cursor else INT64_MAX
        changes = await self.rulebook.changes(request.name or None, before, size + 1)
        page = changes[:size]
        token = pagination.encode(_LIST, filters, {"before": page[-1].revision}) if len(changes) > size else ""
        return rules_pb2.ListRuleChangesResponse(
            changes=[rules_pb2.RuleChange(revision=c.revision, name=c.name, kind=_KINDS[c.kind], subject=c.subject,
                                          change_time=_timestamp(c.changed_at), before=_stored(c.before),
                                          after=_stored(c.after)) for c in page],
            next_page_token=token, revision=self.rulebook.revision)


def register(server, rulebook: Rulebook) -> list[str]:
    rules_pb2_grpc.add_RuleServiceServicer_to_server(RuleServicer(rulebook), server)
    return ["banhammer.ingest.v1.RuleService"]

"""gRPC servicer for banhammer.ingest.v1.IngestService: protobuf in, domain calls, protobuf out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from banhammer.common.v1 import common_pb2
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from services.runtime import pagination
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from services.runtime.interceptors import status_for

from .actions import METADATA_MAX_DEPTH, Columns, RawAction, Row, TooDeep, digest_actions, digest_bytes
from .rules import Rule, dispatch

if TYPE_CHECKING:
    from .config import IngestConfig
    from .pipeline import Pipeline


class _TooDeep(Exception):
    pass


def _number(x: float) -> float | int:
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _value(v: struct_pb2.Value, depth: int) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        return _number(v.number_value)
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return _struct(v.struct_value, depth + 1)
    if kind == "list_value":
        if depth + 1 > METADATA_MAX_DEPTH:
            raise _TooDeep
        return [_value(x, depth + 1) for x in v.list_value.values]
    return None


def _struct(s: struct_pb2.Struct, depth: int) -> dict:
    if depth > METADATA_MAX_DEPTH:
        raise _TooDeep
    return {k: _value(v, depth) for k, v in s.fields.items()}


def _raw(a: common_pb2.PlayerAction) -> RawAction:
    meta = None
    if a.HasField("metadata"):
        try:
            meta = _struct(a.metadata, 1)
        except _TooDeep:
            meta = TooDeep()
    time_us = None
    if a.HasField("time"):
        time_us = a.time.seconds * 1_000_000 + a.time.nanos // 1000
    return RawAction(a.player_id, a.action_type, a.value, meta, time_us, a.event_id)


def _batch(request: ingest_pb2.RecordActionsRequest | ingest_pb2.StreamActionsRequest,
           pipeline: Pipeline) -> tuple[list[Row], Callable[[], str]]:
    """The batch's validated rows, from `actions` or `columns` (one of them), and its digest."""
    if not request.HasField("columns"):
        raws = [_raw(a) for a in request.actions]
        rows = pipeline.validate(raws)
        return rows, lambda: digest_actions(raws, rows)
    if request.actions:
        raise InvalidArgument.field("columns", "set either actions or columns, not both")
    c = request.columns
    rows = pipeline.validate_columns(Columns(list(c.players), list(c.player), list(c.action_types), list(c.action_type),
                                           list(c.value), list(c.time_us), list(c.event_id)))
    return rows, lambda: digest_bytes(c.SerializeToString(deterministic=True))


def _key(request: ingest_pb2.RecordActionsRequest | ingest_pb2.StreamActionsRequest) -> tuple[str, int, int] | None:
    if not request.HasField("producer"):
        return None
    return request.producer.producer_id, request.producer.epoch, request.sequence


def _timestamp(dt) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt)
    return ts


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def rule_message(r: Rule) -> ingest_pb2.DetectionRule:
    m = ingest_pb2.DetectionRule(name=r.name, description=r.description, enabled=r.enabled,
                                 severity=r.severity, action_type=r.action_type)
    dispatch(
        r.condition,
        rate=lambda c: m.rate.CopyFrom(ingest_pb2.RateCondition(window=_duration(c.window), max_count=c.max_count)),
        value=lambda c: m.value.CopyFrom(ingest_pb2.ValueCondition(
            aggregate=ingest_pb2.VALUE_AGGREGATE_SUM if c.aggregate == "sum" else ingest_pb2.VALUE_AGGREGATE_MAX,
            window=_duration(c.window), threshold=c.threshold)),
        impossible=lambda c: m.impossible_value.CopyFrom(ingest_pb2.ImpossibleValueCondition(
            min_value=c.min_value, max_value=c.max_value)),
        baseline=lambda c: m.baseline.CopyFrom(ingest_pb2.BaselineCondition(
            percentile=c.percentile, baseline_window=_duration(c.baseline_window), window=_duration(c.window),
            multiplier=c.multiplier, min_population=c.min_population)))
    if r.ban is not None:
        if r.ban.permanent:
            m.ban.permanent = True
        else:
            m.ban.duration.CopyFrom(_duration(r.ban.seconds))
    if r.cooldown is not None:
        m.cooldown.CopyFrom(_duration(r.cooldown))
    return m


_END = object()


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, pipeline: Pipeline, conf: IngestConfig) -> None:
        self.pipeline = pipeline
        self.conf = conf

    async def RecordAction(self, request: ingest_pb2.RecordActionRequest, context) -> ingest_pb2.RecordActionResponse:
        if not request.HasField("action"):
            raise InvalidArgument.field("action", "is required")
        rows = self.pipeline.validate([_raw(request.action)], prefix="action", indexed=False)
        outcome = await self.pipeline.submit(rows)
        return ingest_pb2.RecordActionResponse(duplicate=outcome.duplicates > 0, time=_timestamp(rows[0].time))

    async def RecordActions(self, request: ingest_pb2.RecordActionsRequest, context) -> ingest_pb2.RecordActionsResponse:
        rows, digest = _batch(request, self.pipeline)
        outcome = await self.pipeline.submit(rows, self.pipeline.batch_key(_key(request), digest))
        return ingest_pb2.RecordActionsResponse(accepted_count=len(rows) - outcome.duplicates,
                                                duplicate_count=outcome.duplicates, duplicate=outcome.duplicate)

    async def StreamActions(self, request_iterator, context):
        """Batches are committed concurrently (up to the in-flight limits); acks go out as they commit.

        In flight is bounded by batches and by actions: a stream stops reading (HTTP/2 flow
        control pushes back on the client) instead of holding many large decoded batches, which is
        what kept the service's memory growing with load rather than staying flat."""
        out: asyncio.Queue = asyncio.Queue()
        slots = asyncio.Semaphore(self.conf.stream_max_inflight)
        max_rows = self.conf.stream_max_inflight_rows
        room = asyncio.Condition()
        inflight = inflight_rows = 0
        tasks: set[asyncio.Task] = set()  # strong references: the loop only keeps weak ones

        async def one(seq: int, req: Any, n: int, key: tuple[str, int, int] | None) -> None:
            nonlocal inflight, inflight_rows
            try:
                rows, digest = _batch(req, self.pipeline)
                del req  # only the validated rows wait for the commit
                outcome = await self.pipeline.submit(rows, self.pipeline.batch_key(key, digest))
                reply: Any = ingest_pb2.StreamActionsResponse(
                    sequence=seq, accepted_count=len(rows) - outcome.duplicates, duplicate_count=outcome.duplicates,
                    duplicate=outcome.duplicate)
                del rows
            except (InvalidArgument, ResourceExhausted, FailedPrecondition) as exc:  # this batch only; the stream goes on
                reply = ingest_pb2.StreamActionsResponse(sequence=seq, error=status_for(exc))
            except BaseException as exc:  # noqa: BLE001 - stream-level failure, raised below
                reply = exc
            finally:
                slots.release()
                async with room:
                    inflight_rows -= n
                    room.notify_all()
            inflight -= 1
            out.put_nowait(reply)

        async def read() -> None:
            nonlocal inflight, inflight_rows
            try:
                async for req in request_iterator:
                    await slots.acquire()  # stop reading (HTTP/2 flow control) while too much is in flight
                    n = len(req.actions) or len(req.columns.player)
                    async with room:  # one batch may always go, however large
                        await room.wait_for(lambda: inflight_rows == 0 or inflight_rows + n <= max_rows)
                        inflight_rows += n
                    inflight += 1
                    key = _key(req)
                    task = asyncio.create_task(one(req.sequence, req, n, key))
                    req = None
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                out.put_nowait(_END)
            except BaseException as exc:  # noqa: BLE001
                out.put_nowait(exc)

        reader = asyncio.create_task(read())
        done_reading = False
        try:
            while not (done_reading and inflight == 0 and out.empty()):
                item = await out.get()
                if item is _END:
                    done_reading = True
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            reader.cancel()

    async def ListRules(self, request: ingest_pb2.ListRulesRequest, context) -> ingest_pb2.ListRulesResponse:
        size = pagination.page_size(request.page_size, 100, 500)
        filters = {"include_disabled": request.include_disabled}
        cursor = pagination.decode(request.page_token, "ingest.ListRules", filters)
        after = pagination.text(cursor.get("after")) if cursor else ""
        rules = [r for r in self.pipeline.rules if (request.include_disabled or r.enabled) and r.name > after]
        page = rules[:size]
        token = pagination.encode("ingest.ListRules", filters, {"after": page[-1].name}) if len(rules) > size else ""
        return ingest_pb2.ListRulesResponse(rules=[rule_message(r) for r in page], next_page_token=token)

    async def GetRule(self, request: ingest_pb2.GetRuleRequest, context) -> ingest_pb2.GetRuleResponse:
        if not request.name or len(request.name.encode()) > 64:
            raise InvalidArgument.field("name", "must be 1..64 bytes")
        for r in self.pipeline.rules:
            if r.name == request.name:
                return ingest_pb2.GetRuleResponse(rule=rule_message(r))
        raise NotFound(f"no rule named {request.name!r}")


def register(server: grpc.aio.Server, pipeline: Pipeline, conf: IngestConfig) -> list[str]:
    """Add the ingest servicer to ``server``; returns the full service names."""
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(pipeline, conf), server)
    return ["banhammer.ingest.v1.IngestService"]

"""Domain results → protobuf responses."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from banhammer.common.v1 import common_pb2
from banhammer.query.v1 import query_pb2 as pb

from . import model


def _ts(t: datetime | None) -> timestamp_pb2.Timestamp | None:
    if t is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(t)
    return out


def _dur(d: timedelta | None) -> duration_pb2.Duration | None:
    if d is None:
        return None
    out = duration_pb2.Duration()
    out.FromTimedelta(d)
    return out


def _struct(d: dict | None) -> struct_pb2.Struct | None:
    if d is None:
        return None
    out = struct_pb2.Struct()
    out.update(d)
    return out


def _range(start: datetime | None, end: datetime | None) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=_ts(start), end_time=_ts(end))


def _accuracy(a: model.Accuracy) -> pb.Accuracy:
    return pb.Accuracy(exact=a.exact, relative_error=a.relative_error, confidence=a.confidence)


def _window(w: model.WindowTotals) -> pb.WindowStats:
    return pb.WindowStats(window=_dur(w.window), action_count=w.actions, unique_players=w.players,
                          unique_players_accuracy=_accuracy(w.players_accuracy))


def overview(o: model.Overview) -> pb.GetStatsOverviewResponse:
    return pb.GetStatsOverviewResponse(
        as_of=_ts(o.as_of), last_minute=_window(o.last_minute), last_hour=_window(o.last_hour),
        last_day=_window(o.last_day), actions_per_second=o.last_minute.actions / 60.0,
        violations_by_rule=[pb.RuleViolationCount(rule=r.rule, severity=r.severity, count=r.count) for r in o.by_rule],
        violations_by_severity=[pb.SeverityViolationCount(severity=s, count=n) for s, n in sorted(o.by_severity.items())],
        banned_players=o.banned_players, total_players=o.total_players)


def top_players(p: model.TopPlayersPage) -> pb.GetTopPlayersResponse:
    return pb.GetTopPlayersResponse(
        players=[pb.TopPlayer(rank=t.rank, player_id=t.player_id, action_count=t.action_count,
                              last_activity=_ts(t.last_activity)) for t in p.players],
        window=_range(p.window_start, p.as_of), next_page_token=p.next_page_token,
        accuracy=pb.RankingAccuracy(exact=p.accuracy.exact, exact_ranks=p.accuracy.exact_ranks,
                                    unlisted_max_count=p.accuracy.unlisted_max))


def hourly_load(h: model.HourlyLoad) -> pb.GetHourlyLoadResponse:
    return pb.GetHourlyLoadResponse(
        hours=[pb.HourlyLoad(hour_start=_ts(x.hour_start), action_count=x.actions, unique_players=x.players)
               for x in h.hours],
        as_of=_ts(h.as_of), unique_players_accuracy=_accuracy(h.players_accuracy))


def violation(v: model.Violation) -> common_pb2.Violation:
    window = _range(v.window_start, v.window_end) if v.window_start or v.window_end else None
    return common_pb2.Violation(
        violation_id=str(v.id), player_id=v.player_id, rule=v.rule, severity=v.severity,
        detected_at=_ts(v.detected_at), evidence=_struct(v.evidence), window=window, ban_requested=v.ban_requested)


def player(p: model.PlayerView) -> pb.GetPlayerResponse:
    s = p.summary
    summary = pb.PlayerSummary(
        player_id=s.player_id, total_actions=s.total_actions, total_violations=s.total_violations,
        risk_score=s.risk_score * 100.0,  # stored 0..1, the API speaks 0..100
        highest_severity=s.highest_severity, first_seen=_ts(s.first_seen), last_seen=_ts(s.last_seen),
        banned=s.banned)
    return pb.GetPlayerResponse(
        summary=summary, recent_violations=[violation(v) for v in p.recent_violations],
        activity=[pb.MinuteActivity(minute_start=_ts(m.minute_start), action_count=m.actions, value_sum=m.value_sum)
                  for m in p.activity],
        activity_window=_range(p.activity_start, p.activity_end))


def player_actions(page: model.Page, player_id: str) -> pb.ListPlayerActionsResponse:
    return pb.ListPlayerActionsResponse(
        actions=[common_pb2.PlayerAction(player_id=player_id, action_type=a.action_type, value=a.value,
                                         metadata=_struct(a.metadata), time=_ts(a.time), event_id=a.event_id)
                 for a in page.items],
        next_page_token=page.next_page_token)


def violations(page: model.Page) -> pb.ListViolationsResponse:
    return pb.ListViolationsResponse(violations=[violation(v) for v in page.items],
                                     next_page_token=page.next_page_token)


_KINDS = {"retention": pb.POLICY_KIND_RETENTION, "compression": pb.POLICY_KIND_COMPRESSION,
          "refresh": pb.POLICY_KIND_REFRESH, "partition_maintenance": pb.POLICY_KIND_PARTITION_MAINTENANCE}
_RUNS = {"success": pb.JOB_RUN_STATUS_SUCCESS, "failed": pb.JOB_RUN_STATUS_FAILED,
         "running": pb.JOB_RUN_STATUS_RUNNING}


def storage(s: model.StorageStats) -> pb.GetStorageStatsResponse:
    return pb.GetStorageStatsResponse(
        timescaledb_available=bool(s.timescaledb_version), timescaledb_version=s.timescaledb_version,
        backend=pb.STORAGE_BACKEND_TIMESCALEDB if s.backend == "timescaledb" else pb.STORAGE_BACKEND_POSTGRESQL,
        tables=[pb.TableSize(name=t.name, total_bytes=t.total_bytes, table_bytes=t.table_bytes,
                             index_bytes=t.index_bytes, row_estimate=t.row_estimate) for t in s.tables],
        hypertables=[pb.HypertableStats(table=h.table, chunk_count=h.chunk_count,
                                        compressed_chunk_count=h.compressed_chunk_count,
                                        before_compression_bytes=h.before_compression_bytes,
                                        after_compression_bytes=h.after_compression_bytes) for h in s.hypertables],
        chunks=[pb.ChunkStats(table=c.table, chunk=c.chunk, range=_range(c.range_start, c.range_end),
                              compressed=c.compressed, before_compression_bytes=c.before_compression_bytes,
                              after_compression_bytes=c.after_compression_bytes) for c in s.chunks],
        policies=[pb.PolicyStatus(job_id=p.job_id, kind=_KINDS.get(p.kind, pb.POLICY_KIND_UNSPECIFIED), target=p.target,
                                  schedule_interval=_dur(p.schedule_interval), threshold=_dur(p.threshold),
                                  end_offset=_dur(p.end_offset), enabled=p.enabled, last_run_time=_ts(p.last_run_time),
                                  last_run_status=_RUNS.get(p.last_run_status, pb.JOB_RUN_STATUS_UNSPECIFIED),
                                  next_run_time=_ts(p.next_run_time), total_failures=p.total_failures)
                  for p in s.policies],
        continuous_aggregates=[pb.ContinuousAggregateStatus(view=a.view, bucket_width=_dur(a.bucket_width),
                                                            materialized_through=_ts(a.materialized_through),
                                                            real_time=a.real_time) for a in s.aggregates],
        as_of=_ts(s.as_of))

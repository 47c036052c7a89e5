"""The ingest service's own metrics, read from the process's registry (what its /metrics serves):
rows committed and duplicates per commit, commit latency, the queue read at scrape time."""

from __future__ import annotations

from prometheus_client import REGISTRY

from banhammer.ingest.v1 import ingest_pb2

from .conftest import player
from .helpers import action


def _value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_commits_rows_and_duplicates_are_counted(stub):
    pid = player()
    names = ("banhammer_ingest_rows_committed_total", "banhammer_ingest_duplicates_total",
             "banhammer_ingest_commit_seconds_count")
    before = {n: _value(n) for n in names}
    batch = [action(pid, value=float(i), event_id=f"m-{i}") for i in range(5)]
    await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=batch))
    await stub.RecordActions(ingest_pb2.RecordActionsRequest(actions=batch[:2]))  # resent: duplicates
    delta = {n: _value(n) - before[n] for n in names}
    assert delta["banhammer_ingest_rows_committed_total"] == 5  # stored once; the resends are duplicates
    assert delta["banhammer_ingest_duplicates_total"] == 2
    assert delta["banhammer_ingest_commit_seconds_count"] == 2  # sequential calls: one commit each
    # Nothing is waiting once both calls are acknowledged.
    assert _value("banhammer_ingest_queued_rows") == 0 and _value("banhammer_ingest_queued_bytes") == 0

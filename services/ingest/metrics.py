"""The ingest service's own Prometheus metrics (the RPC metrics, and so RESOURCE_EXHAUSTED answers and
acknowledgement latency, come from the runtime). No label carries a player id."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from services.runtime.metrics import LATENCY_BUCKETS

QUEUED_ROWS = Gauge("banhammer_ingest_queued_rows", "Rows accepted and waiting for (or in) a commit")
QUEUED_BYTES = Gauge("banhammer_ingest_queued_bytes", "Payload bytes accepted and waiting for (or in) a commit")
COMMIT_SECONDS = Histogram("banhammer_ingest_commit_seconds", "Duration of one write-path commit (several batches)",
                           buckets=LATENCY_BUCKETS)
ROWS_COMMITTED = Counter("banhammer_ingest_rows_committed", "Action rows stored (duplicates are not)")
DUPLICATES = Counter("banhammer_ingest_duplicates", "Action rows that were already stored (idempotent resends)")
BANS_SENT = Counter("banhammer_ingest_bans_sent", "Bans detection rules decided, acknowledged by the session service")
FOLD_QUEUED_ROWS = Gauge("banhammer_ingest_fold_queued_rows", "Acknowledged actions not yet folded, per fold family",
                         ("family",))
BAN_BACKLOG = Gauge("banhammer_ingest_ban_backlog", "Bans in the outbox: pending delivery, or refused for good",
                    ("state",))
#: How far behind a background stage runs: detection, and each fold family (``fold_<family>``).
LAG_SECONDS = Gauge("banhammer_ingest_lag_seconds", "Seconds the named background stage runs behind the newest "
                    "commit", ("stage",))


def follow_lag(stage: str, seconds: Callable[[], float]) -> None:
    LAG_SECONDS.labels(stage).set_function(seconds)


def follow_queue(rows: Callable[[], float], size: Callable[[], float]) -> None:
    """Read the writer's queue at scrape time (no bookkeeping on the hot path)."""
    QUEUED_ROWS.set_function(rows)
    QUEUED_BYTES.set_function(size)

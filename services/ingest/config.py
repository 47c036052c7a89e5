from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class IngestConfig:
    database_url: str = env("TIMESCALEDB_URL", doc="TimescaleDB (or plain PostgreSQL) URL the ingest service owns")
    session_addr: str = env("SESSION_SERVICE_ADDR", "", doc="host:port of the session service; bans are sent there when set")
    pool_size: int = env("INGEST_POOL_SIZE", 8, doc="Max database connections")
    late_limit_seconds: float = env("INGEST_LATE_LIMIT_SECONDS", 86400.0, doc="Oldest accepted event time, seconds before server time")
    future_limit_seconds: float = env("INGEST_FUTURE_LIMIT_SECONDS", 300.0, doc="Newest accepted event time, seconds after server time")
    queue_max_rows: int = env("INGEST_QUEUE_MAX_ROWS", 20_000, doc="Actions waiting for commit before RESOURCE_EXHAUSTED")
    queue_max_bytes: int = env("INGEST_QUEUE_MAX_BYTES", 8 * 1024 * 1024, doc="Approximate bytes waiting for commit before RESOURCE_EXHAUSTED")
    commit_max_rows: int = env("INGEST_COMMIT_MAX_ROWS", 5_000, doc="Most actions coalesced into one transaction (group commit)")
    writers: int = env("INGEST_WRITERS", 2, doc="Concurrent commit transactions")
    stream_max_inflight: int = env("INGEST_STREAM_MAX_INFLIGHT", 8, doc="Unacknowledged batches per stream before it stops reading")
    stream_max_inflight_rows: int = env("INGEST_STREAM_MAX_INFLIGHT_ROWS", 10_000, doc="Unacknowledged actions per stream before it stops reading (one batch may exceed it)")
    rules_file: str = env("INGEST_RULES_FILE", "", doc="JSON detection rules that seed an empty rulebook (then the database holds them); empty: services/ingest/rules.default.json")
    detection_gather_seconds: float = env("INGEST_DETECTION_GATHER_SECONDS", 0.05, doc="Commits gathered into one detection pass (bounds ban latency)")
    baseline_cache_seconds: float = env("INGEST_BASELINE_CACHE_SECONDS", 30.0, doc="How long a population percentile is reused")
    compress_after_days: int = env("INGEST_COMPRESS_AFTER_DAYS", 7, doc="TimescaleDB: compress chunks older than this")
    retention_days: int = env("INGEST_RETENTION_DAYS", 90, doc="Plain PostgreSQL: drop partitions (and event ids) older than this")
    maintenance_seconds: float = env("INGEST_MAINTENANCE_SECONDS", 3600.0, doc="How often partitions are created ahead and expired")
    migrate_on_start: bool = env("INGEST_MIGRATE_ON_START", False, doc="Apply pending migrations at startup instead of refusing to serve")
    copy_min_rows: int = env("INGEST_COPY_MIN_ROWS", 64, doc="Groups of at least this many actions are appended with COPY (0: never, e.g. PGlite)")
    producer_retention_seconds: float = env("INGEST_PRODUCER_RETENTION_SECONDS", 7 * 86400.0, doc="How long a producer's batch keys are remembered (resends later than this are stored again)")
    ban_retry_max_seconds: float = env("INGEST_BAN_RETRY_MAX_SECONDS", 60.0, doc="Longest wait between two deliveries of an undelivered ban (backoff doubles up to it)")
    ban_timeout_seconds: float = env("INGEST_BAN_TIMEOUT_SECONDS", 2.0, doc="Deadline of one BanService.Ban call")
    materialize: bool = env("INGEST_MATERIALIZE", True, doc="Fold queued batches into the aggregates in this process (any number of replicas may)")
    fold_stats_seconds: float = env("INGEST_FOLD_STATS_SECONDS", 0.5, doc="Cadence of the per-minute statistics fold (overview, hourly load)")
    fold_top_seconds: float = env("INGEST_FOLD_TOP_SECONDS", 0.5, doc="Cadence of the per-player fold (player hours, top players per hour)")
    fold_min_rows: int = env("INGEST_FOLD_MIN_ROWS", 50_000, doc="The per-player fold runs sooner once this many actions are queued")
    fold_max_batches: int = env("INGEST_FOLD_MAX_BATCHES", 1000, doc="Most queued batches one fold transaction takes")

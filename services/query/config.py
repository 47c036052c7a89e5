from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class QueryConfig:
    database_url: str = env("QUERY_DATABASE_URL", doc="Read-only URL of the ingest schema (may point at a replica)")
    pool_size: int = env("QUERY_POOL_SIZE", 8, doc="Max database connections")
    statement_timeout_ms: int = env("QUERY_STATEMENT_TIMEOUT_MS", 5000,
                                    doc="Server-side cap on any query (a call's deadline can only shorten it)")
    acquire_timeout_ms: int = env("QUERY_ACQUIRE_TIMEOUT_MS", 1000,
                                  doc="Wait for a free connection before RESOURCE_EXHAUSTED")
    snapshot_fresh_ms: int = env("QUERY_SNAPSHOT_FRESH_MS", 500,
                                 doc="Overview/top players/hourly load results younger than this are shared as is (0: always compute)")
    snapshot_stale_ms: int = env("QUERY_SNAPSHOT_STALE_MS", 1000,
                                 doc="Older shared results are still served (with their as_of) while one recompute runs, up to this age")
    snapshot_timeout_ms: int = env("QUERY_SNAPSHOT_TIMEOUT_MS", 60000,
                                   doc="Statement timeout of a shared computation (no caller's deadline applies to it)")

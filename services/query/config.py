from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class QueryConfig:
    database_url: str = env("QUERY_DATABASE_URL", doc="Read-only URL of the ingest schema (may point at a replica)")
    pool_size: int = env("QUERY_POOL_SIZE", 8, doc="Max database connections")
    statement_timeout_ms: int = env("QUERY_STATEMENT_TIMEOUT_MS", 5000, doc="Server-side cap on any query")

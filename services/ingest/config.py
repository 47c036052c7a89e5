from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class IngestConfig:
    database_url: str = env("TIMESCALEDB_URL", doc="TimescaleDB (or plain PostgreSQL) URL the ingest service owns")
    session_addr: str = env("SESSION_SERVICE_ADDR", "", doc="host:port of the session service; bans are sent there when set")
    pool_size: int = env("INGEST_POOL_SIZE", 8, doc="Max database connections")

"""The ops commands' configuration: the services' store variables, plus where the tools are."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from services.runtime.config import env


@dataclass(frozen=True)
class OpsConfig:
    ingest_database_url: str = env("TIMESCALEDB_URL", doc="The ingest database (backed up, restored, checked)")
    energy_database_url: str = env("ENERGY_DATABASE_URL", doc="The energy database")
    redis_url: str = env("REDIS_URL", doc="The session service's Redis")
    influxdb_url: str = env("INFLUXDB_URL", doc="InfluxDB's HTTP API (checked, and the database restored into)")
    influxdb_database: str = env("INFLUXDB_DATABASE", "energy", doc="InfluxDB database of sensor readings")
    influxdb_username: str = env("INFLUXDB_USERNAME", "", doc="InfluxDB user (empty: no auth)")
    influxdb_password: str = env("INFLUXDB_PASSWORD", "", doc="InfluxDB password")
    influxdb_backup_addr: str = env("INFLUXDB_BACKUP_ADDR", "", doc="host:port of influxd's backup/restore RPC "
                                    "(empty: INFLUXDB_URL's host, port 8088)")
    pg_bin: str = env("OPS_PG_BIN", "", doc="Directory of pg_dump/pg_restore (empty: PATH), "
                      "at least the server's major version")
    influxd_bin: str = env("OPS_INFLUXD_BIN", "influxd", doc="influxd binary for `influxd backup|restore -portable`")
    redis_server_bin: str = env("OPS_REDIS_SERVER_BIN", "redis-server",
                                doc="redis-server used by restore to read the backup's RDB file")

    def influx_rpc(self) -> str:
        if self.influxdb_backup_addr:
            return self.influxdb_backup_addr
        return f"{urllib.parse.urlsplit(self.influxdb_url).hostname or '127.0.0.1'}:8088"


def redact(url: str) -> str:
    """A URL with its password replaced, for manifests and messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

"""InfluxDB 1.x: ``influxd backup -portable`` / ``influxd restore -portable`` over influxd's RPC port,
and what the doctor reads over the HTTP API (version, databases, retention policies)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from services.runtime.cli import UsageError

from . import tools


class Influx:
    def __init__(self, url: str, username: str = "", password: str = "") -> None:
        self.url = url.rstrip("/")
        self.auth = {"u": username, "p": password} if username else {}

    def ping(self) -> str:
        """The server's version (from /ping); raises OSError when unreachable."""
        with urllib.request.urlopen(f"{self.url}/ping", timeout=5) as resp:
            return resp.headers.get("X-Influxdb-Version", "unknown")

    def query(self, q: str, db: str | None = None) -> list[dict]:
        params = {"q": q, **self.auth, **({"db": db} if db else {})}
        try:
            with urllib.request.urlopen(f"{self.url}/query", data=urllib.parse.urlencode(params).encode(),
                                        timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise OSError(f"InfluxDB answered {exc.code} to {q!r}") from None
        results = body.get("results", [{}])
        if error := results[0].get("error"):
            raise OSError(f"InfluxDB: {error}")
        return results[0].get("series", [])

    def databases(self) -> list[str]:
        return [row[0] for s in self.query("SHOW DATABASES") for row in s.get("values", [])]

    def retention_policies(self, db: str) -> dict[str, tuple[str, bool]]:
        """name -> (duration, default)."""
        series = self.query(f'SHOW RETENTION POLICIES ON "{db}"')
        if not series:
            return {}
        cols = series[0]["columns"]
        return {row[cols.index("name")]: (row[cols.index("duration")], row[cols.index("default")])
                for row in series[0].get("values", [])}


def backup(rpc: str, database: str, out: Path, influxd: str = "influxd") -> None:
    tools.run([tools.find(influxd), "backup", "-portable", "-database", database, "-host", rpc, str(out)])


def restore(influx: Influx, rpc: str, database: str, into: str, src: Path, *, force: bool,
            influxd: str = "influxd") -> None:
    """Restore ``database`` of the backup as ``into`` (influxd refuses an existing database)."""
    if into in influx.databases():
        if not force:
            raise UsageError(f"influxdb: the target already has database {into!r}: restore into a server "
                             "without it, or pass --force to drop it first")
        influx.query(f'DROP DATABASE "{into}"')
    tools.run([tools.find(influxd), "restore", "-portable", "-db", database, "-newdb", into, "-host", rpc, str(src)])


def version(influxd: str = "influxd") -> str:
    return tools.version([tools.find(influxd), "version"])

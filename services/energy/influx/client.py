"""InfluxDB v1-compatible API: /write (line protocol), /query (InfluxQL), /ping, setup."""

from __future__ import annotations

import json
import logging

from services.runtime.metrics import STORE_SECONDS

from .http import HttpClient, HttpError

log = logging.getLogger("banhammer.energy.influx")

MEASUREMENT = "sensor_readings"
RETENTION_POLICY = "energy_30d"


class InfluxUnavailable(ConnectionError):
    """InfluxDB could not take the request now (down, timing out, 5xx): retry later. A
    ConnectionError, so the runtime's store guard reports it as UNAVAILABLE like any store's."""


class InfluxRejected(Exception):
    """InfluxDB refused the request itself (4xx): retrying will not help."""


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxClient:
    def __init__(self, url: str, database: str, *, username: str = "", password: str = "",
                 timeout: float = 10.0, retention: str = "30d", shard_duration: str = "1d") -> None:
        self.http = HttpClient(url, timeout=timeout, username=username, password=password)
        self.database = database
        self.retention = retention
        self.shard_duration = shard_duration
        self.ready = False  # database and retention policy exist

    @property
    def qualified_measurement(self) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(RETENTION_POLICY)}.{quote_ident(MEASUREMENT)}"

    async def _call(self, method: str, path: str, params: dict, body: bytes = b"", timeout: float | None = None,
                    content_type: str = "text/plain; charset=utf-8"):
        try:
            with STORE_SECONDS.labels("influxdb", path).time():  # path: /write, /query or /ping
                response = await self.http.request(method, path, params, body, content_type=content_type,
                                                   timeout=timeout)
        except HttpError as exc:
            raise InfluxUnavailable(str(exc)) from None
        if response.status >= 500:
            raise InfluxUnavailable(f"{path} answered {response.status}: {response.body[:200]!r}")
        if response.status >= 400:
            raise InfluxRejected(f"{path} answered {response.status}: {response.body[:500]!r}")
        return response

    async def ping(self) -> None:
        await self._call("GET", "/ping", {}, timeout=2)

    async def setup(self) -> None:
        """Create the database and make a 30-day retention policy its default (idempotent)."""
        await self.execute(f"CREATE DATABASE {quote_ident(self.database)}")
        rows = await self.query(f"SHOW RETENTION POLICIES ON {quote_ident(self.database)}")
        names = {row["name"] for series in rows for row in series["rows"]}
        verb = "ALTER" if RETENTION_POLICY in names else "CREATE"
        extra = " REPLICATION 1" if verb == "CREATE" else ""
        await self.execute(
            f"{verb} RETENTION POLICY {quote_ident(RETENTION_POLICY)} ON {quote_ident(self.database)} "
            f"DURATION {self.retention}{extra} SHARD DURATION {self.shard_duration} DEFAULT")
        self.ready = True

    async def write(self, lines: bytes, timeout: float | None = None) -> None:
        """POST line protocol (newline-separated, ns precision) to the 30-day policy."""
        if not self.ready:
            await self.setup()
        await self._call("POST", "/write", {"db": self.database, "rp": RETENTION_POLICY, "precision": "ns"},
                         lines, timeout=timeout)

    async def execute(self, statement: str) -> None:
        response = await self._call("POST", "/query", {"q": statement},
                                    content_type="application/x-www-form-urlencoded")
        self._results(response.body)

    async def query(self, statement: str, timeout: float | None = None) -> list[dict]:
        """Series of the (single) statement: [{"name", "tags": {...}, "rows": [{col: value}]}]."""
        response = await self._call("GET", "/query", {"db": self.database, "q": statement, "epoch": "ns"},
                                    timeout=timeout)
        (result, *_) = self._results(response.body) or [{}]
        out = []
        for series in result.get("series", []):
            columns = series["columns"]
            out.append({"name": series.get("name", ""), "tags": series.get("tags", {}),
                        "rows": [dict(zip(columns, values)) for values in series.get("values", [])]})
        return out

    @staticmethod
    def _results(body: bytes) -> list[dict]:
        data = json.loads(body or b"{}")
        if "error" in data:
            raise InfluxRejected(data["error"])
        results = data.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxRejected(result["error"])
        return results

    async def close(self) -> None:
        await self.http.close()

"""A minimal keep-alive HTTP/1.1 client on asyncio streams, enough for InfluxDB's /write and /query.

The project has no HTTP client dependency; InfluxDB needs only POST/GET with Content-Length bodies and
chunked or sized responses, so a small pooled client keeps writes off threads.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from dataclasses import dataclass


class HttpError(ConnectionError):
    """Transport failure: connection refused/reset, timeout, malformed response."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class HttpClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0, max_idle: int = 8,
                 username: str = "", password: str = "") -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "http":
            raise ValueError("only http:// InfluxDB URLs are supported")
        self.host = url.hostname or "localhost"
        self.port = url.port or 80
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._max_idle = max_idle
        self._auth = ""
        if username:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._auth = f"Authorization: Basic {token}\r\n"

    async def request(self, method: str, path: str, params: dict[str, str] | None = None, body: bytes = b"",
                      content_type: str = "text/plain; charset=utf-8", timeout: float | None = None) -> Response:
        target = self.prefix + path + ("?" + urllib.parse.urlencode(params) if params else "")
        head = (f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._auth}"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        # A pooled connection may have been closed by the server while idle: retry once on a fresh one
        # (safe for InfluxDB writes: rewriting the same points is idempotent).
        for attempt in (0, 1):
            pooled = attempt == 0 and bool(self._idle)
            conn = self._idle.pop() if pooled else None
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout or self.timeout)
                reader, writer = conn
                writer.write(head + body)
                response, keep = await asyncio.wait_for(self._read(reader), timeout or self.timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                if conn is not None:
                    conn[1].close()
                if pooled and not isinstance(exc, asyncio.TimeoutError):
                    continue
                raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
            except BaseException:  # cancelled mid-request: the connection state is unknown
                if conn is not None:
                    conn[1].close()
                raise
            if keep and len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                conn[1].close()
            return response
        raise HttpError("unreachable")

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[Response, bool]:
        status_line = await reader.readuntil(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"bad status line {status_line[:60]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        keep = headers.get("connection", "").lower() != "close"
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await reader.read()
            keep = False
        return Response(status, body), keep

    async def close(self) -> None:
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()

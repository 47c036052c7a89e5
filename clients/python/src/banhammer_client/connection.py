"""Channels and per-call metadata: plain, bearer token or client certificate (mTLS), trace context."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

try:  # optional: with OpenTelemetry, every call carries the game server's trace context
    from opentelemetry import propagate as _propagate
except ImportError:  # pragma: no cover - depends on the game server's environment
    _propagate = None

Token = str | Callable[[], str]  # a callable is asked on every call (and reconnect): tokens rotate


@dataclass(frozen=True)
class ClientCertificate:
    """PEM files for mTLS: the CA that signed the gateway's certificate, and this client's pair."""

    ca: Path | str
    cert: Path | str
    key: Path | str
    server_name: str = ""  # verify the gateway as this name (dev certs: "localhost")

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=Path(self.ca).read_bytes(),
                                            private_key=Path(self.key).read_bytes(),
                                            certificate_chain=Path(self.cert).read_bytes())


# Keepalive: a game server learns of a dead gateway within ~40 s even when idle, so the ban
# watcher reconnects (and resynchronises) instead of trusting a silent stream.
OPTIONS = (("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000),
           ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0))


def open_channel(target: str, certificate: ClientCertificate | None = None) -> grpc.aio.Channel:
    if certificate is None:
        return grpc.aio.insecure_channel(target, options=OPTIONS)
    options = OPTIONS
    if certificate.server_name:
        options = (*OPTIONS, ("grpc.ssl_target_name_override", certificate.server_name))
    return grpc.aio.secure_channel(target, certificate.credentials(), options=options)


class Metadata:
    """What every call carries: the bearer token (when given) and the current trace context."""

    def __init__(self, token: Token | None) -> None:
        self.token = token

    def __call__(self) -> Sequence[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.token is not None:
            out.append(("authorization", f"Bearer {self.token() if callable(self.token) else self.token}"))
        if _propagate is not None:
            carrier: dict[str, str] = {}
            _propagate.inject(carrier)
            out.extend(carrier.items())
        return tuple(out)

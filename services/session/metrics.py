"""The session service's own Prometheus metrics; Redis command latency comes from the runtime's store
guard (``banhammer_store_operation_seconds{store="redis"}``)."""

from __future__ import annotations

from prometheus_client import Counter

#: What the gateway's authorization call decided: allowed, unauthenticated, denied, limited, unknown_path.
GATEWAY_DECISIONS = Counter("banhammer_gateway_decisions", "Gateway authorization decisions, by result", ("result",))

"""The session service's own Prometheus metrics; Redis command latency comes from the runtime's store
guard (``banhammer_store_operation_seconds{store="redis"}``)."""

from __future__ import annotations

from prometheus_client import Counter

#: What the gateway's authorization call decided: allowed, unauthenticated, denied, limited, unknown_path.
GATEWAY_DECISIONS = Counter("banhammer_gateway_decisions", "Gateway authorization decisions, by result", ("result",))
RESULTS = ("allowed", "unauthenticated", "denied", "limited", "unknown_path")
for _result in RESULTS:  # every result is a series from the start, so a rate over it is 0, not absent
    GATEWAY_DECISIONS.labels(_result)

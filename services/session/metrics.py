"""The session service's own Prometheus metrics; Redis command latency comes from the runtime's store
guard (``banhammer_store_operation_seconds{store="redis"}``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

#: What the gateway's authorization call decided: allowed, unauthenticated, denied, limited, unknown_path.
GATEWAY_DECISIONS = Counter("banhammer_gateway_decisions", "Gateway authorization decisions, by result", ("result",))
#: Counted after every sweep (SWEEP_INTERVAL_SECONDS): sessions and bans in force.
ACTIVE_SESSIONS = Gauge("banhammer_session_active_sessions", "Sessions not expired (as of the last sweep)")
ACTIVE_BANS = Gauge("banhammer_session_active_bans", "Bans in force (as of the last sweep)")
RESULTS = ("allowed", "unauthenticated", "denied", "limited", "unknown_path")
for _result in RESULTS:  # every result is a series from the start, so a rate over it is 0, not absent
    GATEWAY_DECISIONS.labels(_result)

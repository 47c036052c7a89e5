"""The energy service's own Prometheus metrics; InfluxDB and PostgreSQL latency come from the runtime
(``banhammer_store_operation_seconds``)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge

SPOOL_BYTES = Gauge("banhammer_energy_spool_bytes", "Sensor reading bytes spooled locally while InfluxDB is away")
SPOOL_BATCHES = Gauge("banhammer_energy_spool_batches", "Sensor reading batches spooled locally")
SPOOL_OLDEST_AGE = Gauge("banhammer_energy_spool_oldest_age_seconds", "Seconds since the oldest spooled batch was "
                         "spooled (0: the spool is empty)")
ALERT_EVALUATIONS = Counter("banhammer_energy_alert_evaluations", "Alert rule evaluations")
ALERT_FIRINGS = Counter("banhammer_energy_alert_firings", "Alert rule evaluations that raised an alert")


def follow_spool(size: Callable[[], float], batches: Callable[[], float], oldest_age: Callable[[], float]) -> None:
    """Read the spool at scrape time."""
    SPOOL_BYTES.set_function(size)
    SPOOL_BATCHES.set_function(batches)
    SPOOL_OLDEST_AGE.set_function(oldest_age)

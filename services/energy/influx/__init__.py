"""InfluxDB v1-compatible HTTP API: line protocol writes, InfluxQL reads, the durable spool."""

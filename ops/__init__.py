"""Operator commands for the stores: ``python -m ops backup DIR | restore DIR | doctor``.

Configured by the services' own variables (TIMESCALEDB_URL, ENERGY_DATABASE_URL, REDIS_URL,
INFLUXDB_URL, ...), so the same environment that runs the suite can back it up and check it.
"""

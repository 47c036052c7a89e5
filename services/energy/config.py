from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class EnergyConfig:
    database_url: str = env("ENERGY_DATABASE_URL", doc="PostgreSQL URL for users, buildings, tenants and usage")
    influxdb_url: str = env("INFLUXDB_URL", doc="InfluxDB base URL (v1-compatible HTTP API), e.g. http://localhost:8086")
    influxdb_database: str = env("INFLUXDB_DATABASE", "energy", doc="InfluxDB database for sensor_readings")
    influxdb_username: str = env("INFLUXDB_USERNAME", "", doc="InfluxDB user (empty: no auth)")
    influxdb_password: str = env("INFLUXDB_PASSWORD", "", doc="InfluxDB password")
    session_addr: str = env("SESSION_SERVICE_ADDR", "", doc="host:port of the session service (logins, cache, alerts)")
    pool_size: int = env("ENERGY_POOL_SIZE", 8, doc="Max database connections")

from dataclasses import dataclass

from services.runtime import env


@dataclass(frozen=True)
class EnergyConfig:
    database_url: str = env("ENERGY_DATABASE_URL", doc="PostgreSQL URL for users, buildings, tenants and usage")
    influxdb_url: str = env("INFLUXDB_URL", doc="InfluxDB base URL (v1-compatible HTTP API), e.g. http://localhost:8086")
    influxdb_database: str = env("INFLUXDB_DATABASE", "energy", doc="InfluxDB database for sensor_readings")
    influxdb_username: str = env("INFLUXDB_USERNAME", "", doc="InfluxDB user (empty: no auth)")
    influxdb_password: str = env("INFLUXDB_PASSWORD", "", doc="InfluxDB password")
    influxdb_timeout_seconds: float = env("INFLUXDB_TIMEOUT_SECONDS", 5.0, doc="Per-request InfluxDB timeout before a write is spooled")
    influxdb_retention: str = env("INFLUXDB_RETENTION", "30d", doc="Duration of the retention policy created at setup")
    session_addr: str = env("SESSION_SERVICE_ADDR", "", doc="host:port of the session service (logins, cache, alerts)")
    pool_size: int = env("ENERGY_POOL_SIZE", 8, doc="Max database connections")
    auto_migrate: bool = env("ENERGY_AUTO_MIGRATE", False, doc="Apply pending migrations at start (else run `migrate`)")
    spool_dir: str = env("ENERGY_SPOOL_DIR", "/var/lib/banhammer/energy", doc="Directory of the durable reading spool (a volume)")
    spool_max_bytes: int = env("ENERGY_SPOOL_MAX_BYTES", 256 * 1024 * 1024, doc="Spool bound; writes get UNAVAILABLE beyond it")
    require_auth: bool = env("ENERGY_REQUIRE_AUTH", False,
                             doc="Require a session bearer token (roles enforced); off: direct callers without one "
                                 "act as energy admin")
    session_ttl_seconds: float = env("ENERGY_SESSION_TTL_SECONDS", 8 * 3600.0, doc="Lifetime of login sessions")
    argon2_time_cost: int = env("ENERGY_ARGON2_TIME_COST", 3, doc="argon2id iterations")
    argon2_memory_kib: int = env("ENERGY_ARGON2_MEMORY_KIB", 65536, doc="argon2id memory per hash (KiB)")
    argon2_parallelism: int = env("ENERGY_ARGON2_PARALLELISM", 4, doc="argon2id lanes")
    argon2_max_concurrent: int = env("ENERGY_ARGON2_MAX_CONCURRENT", 2, doc="Password hashes computed at once")
    alert_interval_seconds: float = env("ENERGY_ALERT_INTERVAL_SECONDS", 30.0, doc="Alert evaluation period (0: off)")
    alert_write_gather_seconds: float = env("ENERGY_ALERT_WRITE_GATHER_SECONDS", 0.2, doc="Threshold rules are evaluated this long after a write touches them (0: only on the period)")
    power_sensor_type: str = env("ENERGY_POWER_SENSOR_TYPE", "power", doc="sensor_type whose kW readings give consumption")
    forecast_min_history_hours: int = env("ENERGY_FORECAST_MIN_HISTORY_HOURS", 48, doc="Hourly points a forecast needs")
    forecast_cache_seconds: float = env("ENERGY_FORECAST_CACHE_SECONDS", 300.0, doc="Forecast cache TTL")
    dashboard_cache_seconds: float = env("ENERGY_DASHBOARD_CACHE_SECONDS", 5.0, doc="Dashboard cache TTL")
    building_list_cache_seconds: float = env("ENERGY_BUILDING_LIST_CACHE_SECONDS", 60.0, doc="Building list cache TTL")

"""Buildings, tenants and usage in PostgreSQL; sensor readings in InfluxDB; alerts."""

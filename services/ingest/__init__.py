"""Player actions into TimescaleDB, with real-time violation detection."""

-- Read paths of the query service (TimescaleDB). Hypertables already index their time column,
-- so only the violations' keyset order needs its own index.
CREATE INDEX IF NOT EXISTS violations_ts_detected_id ON violations_ts (detected_at DESC, id DESC);

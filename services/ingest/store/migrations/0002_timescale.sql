-- Ingest schema, part 2 on TimescaleDB (extension present). Version 2, one transaction.
-- The compression age below is the default (7 days); the migrate command re-applies the policy
-- with INGEST_COMPRESS_AFTER_DAYS afterwards (services/ingest/store/migrate.py::tune_timescale).

CREATE TABLE IF NOT EXISTS player_actions_ts (
    time        timestamptz      NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    action_type text COLLATE "C" NOT NULL,
    value       double precision NOT NULL,
    metadata    jsonb,
    event_id    text COLLATE "C"
);
SELECT create_hypertable('player_actions_ts', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => true);
CREATE INDEX IF NOT EXISTS player_actions_ts_player_time ON player_actions_ts (player_id, time DESC);

ALTER TABLE player_actions_ts SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'player_id',
    timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('player_actions_ts', INTERVAL '7 days', if_not_exists => true);
SELECT add_retention_policy('player_actions_ts', INTERVAL '90 days', if_not_exists => true);

-- Real-time per-minute rollup (materialized buckets plus the not yet materialized tail).
CREATE MATERIALIZED VIEW IF NOT EXISTS action_stats_1min
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       player_id,
       action_type,
       count(*)::bigint AS actions,
       sum(value)       AS value_sum,
       max(value)       AS value_max
FROM player_actions_ts
GROUP BY 1, 2, 3
WITH NO DATA;
SELECT add_continuous_aggregate_policy('action_stats_1min',
    start_offset => INTERVAL '2 days', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_retention_policy('action_stats_1min', INTERVAL '90 days', if_not_exists => true);

-- Hourly rollup, hierarchical on the per-minute one.
CREATE MATERIALIZED VIEW IF NOT EXISTS action_stats_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       player_id,
       action_type,
       sum(actions)::bigint AS actions,
       sum(value_sum)       AS value_sum,
       max(value_max)       AS value_max
FROM action_stats_1min
GROUP BY 1, 2, 3
WITH NO DATA;
SELECT add_continuous_aggregate_policy('action_stats_1h',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_retention_policy('action_stats_1h', INTERVAL '90 days', if_not_exists => true);

SELECT create_hypertable('violations_ts', 'detected_at', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => true, migrate_data => true);

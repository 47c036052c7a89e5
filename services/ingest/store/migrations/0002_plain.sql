-- Ingest schema, part 2 on plain PostgreSQL (no TimescaleDB). Version 2, one transaction.
-- Daily range partitions are created ahead and dropped after retention by the ingest service
-- (services/ingest/store/partitions.py); the rollups are tables the writer upserts in the same
-- transaction as the raw rows, so they are exact and real-time.

CREATE TABLE IF NOT EXISTS player_actions_ts (
    time        timestamptz      NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    action_type text COLLATE "C" NOT NULL,
    value       double precision NOT NULL,
    metadata    jsonb,
    event_id    text COLLATE "C"
) PARTITION BY RANGE (time);
CREATE INDEX IF NOT EXISTS player_actions_ts_player_time ON player_actions_ts (player_id, time DESC);

CREATE TABLE IF NOT EXISTS action_stats_1min (
    bucket      timestamptz      NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    action_type text COLLATE "C" NOT NULL,
    actions     bigint           NOT NULL,
    value_sum   double precision NOT NULL,
    value_max   double precision NOT NULL,
    PRIMARY KEY (bucket, player_id, action_type)
) PARTITION BY RANGE (bucket);
CREATE INDEX IF NOT EXISTS action_stats_1min_player ON action_stats_1min (player_id, bucket DESC);

CREATE TABLE IF NOT EXISTS action_stats_1h (
    bucket      timestamptz      NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    action_type text COLLATE "C" NOT NULL,
    actions     bigint           NOT NULL,
    value_sum   double precision NOT NULL,
    value_max   double precision NOT NULL,
    PRIMARY KEY (bucket, player_id, action_type)
) PARTITION BY RANGE (bucket);
CREATE INDEX IF NOT EXISTS action_stats_1h_player ON action_stats_1h (player_id, bucket DESC);

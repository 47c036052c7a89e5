-- Read paths of the query service (plain PostgreSQL).
-- Time-range scans of the raw table (the ragged edges of a window): BRIN is nearly free to keep
-- up on time-ordered inserts, unlike a B-tree on every row.
CREATE INDEX IF NOT EXISTS player_actions_ts_time_brin ON player_actions_ts USING brin (time);
-- ListViolations pages newest first by (detected_at, id).
CREATE INDEX IF NOT EXISTS violations_ts_detected_id ON violations_ts (detected_at DESC, id DESC);

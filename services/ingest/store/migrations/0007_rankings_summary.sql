-- Aggregates that follow the write path (issues 11 and 12), part 2: most active players per hour,
-- player_summary folded from a queue, and counters that keep the overview O(buckets).

CREATE TABLE IF NOT EXISTS ingest_pending_top (
    batch_id    bigint PRIMARY KEY,
    rows        int NOT NULL,
    min_time    timestamptz NOT NULL,
    max_time    timestamptz NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ingest_pending_summary (LIKE ingest_pending_top INCLUDING ALL);

-- Exact actions per (UTC hour, player, action type); action_type '' holds the player's total.
-- Keyed by player first: a ranking looks up its candidates' hours, never a whole hour.
CREATE TABLE IF NOT EXISTS player_hour_counts (
    player_id   text COLLATE "C" NOT NULL,
    action_type text COLLATE "C" NOT NULL,
    bucket      timestamptz      NOT NULL,
    actions     bigint           NOT NULL,
    PRIMARY KEY (player_id, action_type, bucket)
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS player_hour_counts_bucket_brin ON player_hour_counts USING brin (bucket);

-- The top K (2,000: services/ingest/store/fold.py TOP_K) players of each (hour, action type) with
-- their exact count in that hour (a player tying the K-th may be left out). Counts only grow, so a
-- player outside has at most the list's lowest count, which bounds what a ranking can have missed.
CREATE TABLE IF NOT EXISTS top_players_1h (
    bucket      timestamptz      NOT NULL,
    action_type text COLLATE "C" NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    actions     bigint           NOT NULL,
    PRIMARY KEY (bucket, action_type, player_id)
);

INSERT INTO player_hour_counts (player_id, action_type, bucket, actions)
SELECT player_id, coalesce(action_type, ''), date_trunc('hour', time, 'UTC'), count(*)
FROM player_actions_ts WHERE batch_id IS NULL
GROUP BY GROUPING SETS ((player_id, action_type, date_trunc('hour', time, 'UTC')), (player_id, date_trunc('hour', time, 'UTC')))
ON CONFLICT DO NOTHING;
INSERT INTO top_players_1h (bucket, action_type, player_id, actions)
SELECT bucket, action_type, player_id, actions
FROM (SELECT *, row_number() OVER (PARTITION BY bucket, action_type
                                   ORDER BY actions DESC, player_id COLLATE "C") AS rank
      FROM player_hour_counts) ranked
WHERE rank <= 2000
ON CONFLICT DO NOTHING;

-- Players ever seen, kept by a statement trigger (whoever inserts into player_summary), so the
-- overview never counts 10M rows.
CREATE TABLE IF NOT EXISTS player_count (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    players   bigint  NOT NULL
);
INSERT INTO player_count (players) SELECT count(*) FROM player_summary ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION player_count_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO n FROM changed;
    ELSE
        SELECT -count(*) INTO n FROM changed;
    END IF;
    IF n <> 0 THEN  -- statements that insert no new player leave the row alone (no contention)
        UPDATE player_count SET players = players + n;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS player_summary_count_insert ON player_summary;
CREATE TRIGGER player_summary_count_insert AFTER INSERT ON player_summary
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION player_count_follow();
DROP TRIGGER IF EXISTS player_summary_count_delete ON player_summary;
CREATE TRIGGER player_summary_count_delete AFTER DELETE ON player_summary
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION player_count_follow();

-- Banned players are few: counted through this index, not by scanning every summary.
CREATE INDEX IF NOT EXISTS player_summary_banned ON player_summary (banned_until) WHERE banned_until IS NOT NULL;

-- Violations per (UTC hour, rule, severity), with the latest one's (detected_at, id): the
-- overview's counts by rule and severity read hours, and raw violations only at the window's
-- partial hours. A row trigger (a TimescaleDB hypertable allows no transition tables); violations
-- are rare next to actions.
CREATE TABLE IF NOT EXISTS violation_counts_1h (
    bucket           timestamptz      NOT NULL,
    rule             text COLLATE "C" NOT NULL,
    severity         smallint         NOT NULL,
    violations       bigint           NOT NULL,
    last_detected_at timestamptz      NOT NULL,
    last_id          bigint           NOT NULL,
    PRIMARY KEY (bucket, rule, severity)
);

CREATE OR REPLACE FUNCTION violation_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO violation_counts_1h AS c (bucket, rule, severity, violations, last_detected_at, last_id)
    VALUES (date_trunc('hour', NEW.detected_at, 'UTC'), NEW.rule, NEW.severity, 1, NEW.detected_at, NEW.id)
    ON CONFLICT (bucket, rule, severity) DO UPDATE SET
        violations = c.violations + 1,
        last_detected_at = CASE WHEN (EXCLUDED.last_detected_at, EXCLUDED.last_id) > (c.last_detected_at, c.last_id)
                                THEN EXCLUDED.last_detected_at ELSE c.last_detected_at END,
        last_id = CASE WHEN (EXCLUDED.last_detected_at, EXCLUDED.last_id) > (c.last_detected_at, c.last_id)
                       THEN EXCLUDED.last_id ELSE c.last_id END;
    RETURN NULL;
END $$;
INSERT INTO violation_counts_1h (bucket, rule, severity, violations, last_detected_at, last_id)
SELECT DISTINCT ON (1, 2, 3) date_trunc('hour', detected_at, 'UTC'), rule, severity,
       count(*) OVER (PARTITION BY date_trunc('hour', detected_at, 'UTC'), rule, severity), detected_at, id
FROM violations_ts
ORDER BY 1, 2, 3, detected_at DESC, id DESC
ON CONFLICT DO NOTHING;
DROP TRIGGER IF EXISTS violations_ts_count ON violations_ts;
CREATE TRIGGER violations_ts_count AFTER INSERT ON violations_ts
    FOR EACH ROW EXECUTE FUNCTION violation_counts_follow();

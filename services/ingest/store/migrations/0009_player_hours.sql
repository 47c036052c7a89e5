-- One row of per-player state per (player, UTC hour), and nothing else per action (issue 11).
--
-- At about one action per player per minute every fold meets a player once, so each per-player
-- row a fold keeps costs about what a raw row costs. Before this migration the folds kept three
-- (per-hour counts by type and in total, and player_summary); now they keep one, player_hours:
-- - a player's summary (actions, first and last seen) is the sum over its hours, read through the
--   primary key (at most 24 x 90 rows), plus its hours past retention, kept in player_summary;
-- - the overview's players are counted by the fold, when it inserts a player's first hour;
-- - each hour's top list (all action types) takes its entrants from player_hours' new counts;
--   rankings of one action type count raw rows (nothing per player and type is kept);
-- - the detection baseline of all action types reads player_hours; of one type, raw rows.

CREATE TABLE IF NOT EXISTS player_hours (
    player_id  text COLLATE "C" NOT NULL,
    bucket     timestamptz      NOT NULL,
    actions    bigint           NOT NULL,
    first_time timestamptz      NOT NULL,
    last_time  timestamptz      NOT NULL,
    PRIMARY KEY (player_id, bucket)
) WITH (fillfactor = 80);  -- later folds in the same hour update in place (HOT)
CREATE INDEX IF NOT EXISTS player_hours_bucket_brin ON player_hours USING brin (bucket);

-- Every raw row the "top" fold has already taken (batches still queued are folded later).
INSERT INTO player_hours (player_id, bucket, actions, first_time, last_time)
SELECT player_id, date_trunc('hour', time, 'UTC'), count(*), min(time), max(time)
FROM player_actions_ts a
WHERE NOT EXISTS (SELECT 1 FROM ingest_pending_top q WHERE q.batch_id = a.batch_id)
GROUP BY 1, 2
ON CONFLICT DO NOTHING;

-- player_summary keeps what outlives retention and what only detection writes: when hours expire,
-- their actions and first/last times move into action_count/first_seen/last_seen (store/fold.py
-- EXPIRE_HOURS), so a summary is player_summary plus the player's kept hours, over all time. Until
-- now those columns held every action: the hours just kept are taken out of them.
ALTER TABLE player_summary ALTER COLUMN first_seen DROP NOT NULL, ALTER COLUMN last_seen DROP NOT NULL;
UPDATE player_summary s SET action_count = greatest(0, s.action_count - h.actions)
FROM (SELECT player_id, sum(actions) AS actions FROM player_hours GROUP BY player_id) h
WHERE h.player_id = s.player_id;

-- Players ever seen (the overview's total): a player is new when the fold inserts its first hour
-- and it has no expired hours (player_summary.first_seen set; store/fold.py); expiry moves players,
-- never removes them.
DROP TRIGGER IF EXISTS player_summary_count_insert ON player_summary;
DROP TRIGGER IF EXISTS player_summary_count_delete ON player_summary;
DROP FUNCTION IF EXISTS player_count_follow();
UPDATE player_count SET players = (SELECT count(*) FROM (SELECT player_id FROM player_summary
                                                          UNION SELECT player_id FROM player_hours) p);

DROP TABLE IF EXISTS player_hour_counts;
DELETE FROM top_players_1h WHERE action_type <> '';

-- The summary family is gone: the writer finds the queues when it opens.
DROP TABLE IF EXISTS ingest_pending_summary;

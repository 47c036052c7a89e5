-- Ingest schema, part 1: tables identical on TimescaleDB and plain PostgreSQL 15.
-- Applied once (version 1) by services/ingest/store/migrate.py inside one transaction.
-- Identifier columns (player_id, event_id, action_type, rule) use the "C" collation: they are opaque
-- ids, byte order is the right order for them, and locale-aware comparison made every index insert
-- and sort of the write path several times slower.

-- Idempotency keys. A hypertable's unique index must include its time column, so (player_id,
-- event_id) uniqueness lives here instead: one row per stored action that carried an event_id.
-- Retention (90 days, like the actions) is a batched DELETE by the ingest service; the BRIN index
-- makes that cheap because rows arrive in roughly time order.
CREATE TABLE IF NOT EXISTS action_event_ids (
    player_id text COLLATE "C" NOT NULL,
    event_id  text COLLATE "C" NOT NULL,
    time      timestamptz NOT NULL,
    PRIMARY KEY (player_id, event_id)
);
CREATE INDEX IF NOT EXISTS action_event_ids_time_brin ON action_event_ids USING brin (time);

CREATE SEQUENCE IF NOT EXISTS violations_ts_id_seq AS bigint;

CREATE TABLE IF NOT EXISTS violations_ts (
    id             bigint      NOT NULL DEFAULT nextval('violations_ts_id_seq'),
    detected_at    timestamptz NOT NULL DEFAULT now(),
    player_id      text COLLATE "C" NOT NULL,
    rule           text COLLATE "C" NOT NULL,
    severity       smallint    NOT NULL CHECK (severity BETWEEN 1 AND 4),
    evidence       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    window_start   timestamptz,
    window_end     timestamptz,
    ban_requested  boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (id, detected_at)
);
-- Per-player history (query service) and the detector's cooldown look-up.
CREATE INDEX IF NOT EXISTS violations_ts_player_time ON violations_ts (player_id, detected_at DESC);
CREATE INDEX IF NOT EXISTS violations_ts_rule_player_time ON violations_ts (rule, player_id, detected_at DESC);

CREATE TABLE IF NOT EXISTS player_summary (
    player_id          text COLLATE "C" PRIMARY KEY,
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    action_count       bigint      NOT NULL DEFAULT 0,
    violation_count    bigint      NOT NULL DEFAULT 0,
    risk_score         double precision NOT NULL DEFAULT 0 CHECK (risk_score >= 0 AND risk_score <= 1),
    banned_until       timestamptz,           -- 'infinity' = permanent
    last_violation_at  timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
-- Every committed batch updates last_seen/action_count of its players: with no index on those
-- columns and room left in each page, those updates are HOT (no index writes). risk_score changes
-- only on violations, so its index is cheap to keep for "riskiest players" reads.
CREATE INDEX IF NOT EXISTS player_summary_risk ON player_summary (risk_score DESC, player_id);

-- Ingest schema, part 4: the write transaction only appends (issue 11).
-- Every row of one write transaction carries that transaction's batch_id; the materializer folds
-- aggregates from the queued batch ids (``ingest_pending_<family>`` tables, created with the
-- aggregates they feed) instead of the writer upserting rollups per action.
CREATE SEQUENCE IF NOT EXISTS ingest_batch_id_seq AS bigint;
ALTER TABLE player_actions_ts ADD COLUMN IF NOT EXISTS batch_id bigint;  -- NULL for rows from before
-- A B-tree, not BRIN: folds look up a handful of batch ids among billions of rows, and rows of one
-- batch can lie anywhere in time (late events), so a range summary would match most of the table.
CREATE INDEX IF NOT EXISTS player_actions_ts_batch ON player_actions_ts (batch_id);

-- Batch-level idempotency (ingest.proto, ProducerKey): one row per keyed batch instead of one per
-- action. ``digest`` tells a resend (same actions) from a client bug (same key, other actions).
-- The sequence is the proto's uint64 stored as its two's-complement bigint.
CREATE TABLE IF NOT EXISTS ingest_producers (
    producer_id text COLLATE "C" PRIMARY KEY,
    epoch       bigint      NOT NULL,  -- the highest committed: lower epochs are fenced
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ingest_producer_batches (
    producer_id  text COLLATE "C" NOT NULL,
    epoch        bigint      NOT NULL,
    sequence     bigint      NOT NULL,
    digest       bytea       NOT NULL,
    rows         integer     NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer_id, epoch, sequence)
);
-- Retention deletes keys older than INGEST_PRODUCER_RETENTION_SECONDS; they arrive in time order.
CREATE INDEX IF NOT EXISTS ingest_producer_batches_committed ON ingest_producer_batches USING brin (committed_at);

-- Bans the rules decided, written in the violation's transaction and delivered to the session
-- service until it acknowledges (its idempotency key makes a redelivery harmless).
CREATE TABLE IF NOT EXISTS ban_outbox (
    violation_id    bigint PRIMARY KEY,
    player_id       text COLLATE "C" NOT NULL,
    rule            text COLLATE "C" NOT NULL,
    request         bytea       NOT NULL,  -- serialized banhammer.session.v1.BanRequest
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    failed          boolean     NOT NULL DEFAULT false  -- refused for good (e.g. INVALID_ARGUMENT): kept for people
);
CREATE INDEX IF NOT EXISTS ban_outbox_due ON ban_outbox (next_attempt_at) WHERE NOT failed;

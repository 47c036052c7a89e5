-- Detection rules managed at runtime (banhammer.ingest.v1.RuleService).
-- detection_rules holds the current rulebook; rule_changes is its append-only audit trail, and
-- its highest revision is the rulebook's revision, which every ingest replica polls.
-- Rules are kept in the rules file's JSON form (services/ingest/rules.py parses both).
CREATE TABLE IF NOT EXISTS detection_rules (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    definition jsonb NOT NULL,
    revision   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS rule_changes (
    revision   bigserial PRIMARY KEY,
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('create', 'update')),
    subject    text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    before     jsonb,
    after      jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_changes_name_revision ON rule_changes (name, revision DESC);

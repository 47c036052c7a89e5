"""Stats and investigations over the ingest schema, served from aggregates."""

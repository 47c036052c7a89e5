#!/usr/bin/env bash
# Runs once, on the first start of an empty TimescaleDB volume (docker-entrypoint-initdb.d).
# Creates `banhammer_query`, the read-only role the query service connects as
# (QUERY_DATABASE_URL). Tables are created later by `python -m services.ingest migrate` as
# POSTGRES_USER, so SELECT is granted through default privileges on that owner's future tables
# (hypertables and continuous aggregates included) as well as on anything that already exists.
# In production the same role exists on the primary and is replicated to the read replicas.
set -euo pipefail

: "${QUERY_DB_PASSWORD:?QUERY_DB_PASSWORD must be set (see .env.example)}"

psql -v ON_ERROR_STOP=1 \
     --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set=query_password="$QUERY_DB_PASSWORD" <<'SQL'
CREATE ROLE banhammer_query LOGIN PASSWORD :'query_password';
ALTER ROLE banhammer_query SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"DBNAME" TO banhammer_query;
GRANT USAGE ON SCHEMA public TO banhammer_query;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO banhammer_query;
-- No FOR ROLE: applies to objects later created by the current role, POSTGRES_USER.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO banhammer_query;
SQL

"""GetStorageStats on plain PostgreSQL: sizes, partitions and rollups against the catalog.

The TimescaleDB statements (chunks, compression, jobs, caggs) are in services/query/store/sql.py
and run on PGlite+TimescaleDB by tests/timescale/.
"""

from __future__ import annotations

from datetime import timedelta

from banhammer.query.v1 import query_pb2 as pb

from .helpers import when

PARTITIONED = ("public.player_actions_ts", "public.action_stats_1min", "public.action_stats_1h")


def test_storage_stats_on_plain_postgres(query, db):
    r = query.GetStorageStats(pb.GetStorageStatsRequest(), timeout=10)
    assert not r.timescaledb_available and r.timescaledb_version == ""
    assert r.backend == pb.STORAGE_BACKEND_POSTGRESQL

    tables = {t.name: t for t in r.tables}
    assert set(tables) >= {*PARTITIONED, "public.violations_ts", "public.player_summary"}
    assert [t.total_bytes for t in r.tables] == sorted((t.total_bytes for t in r.tables), reverse=True)
    ((raw_total, raw_rows),) = db.rows(
        "SELECT sum(pg_total_relation_size(relid)), sum(greatest(c.reltuples, 0)) FILTER (WHERE isleaf)"
        " FROM pg_partition_tree('player_actions_ts') JOIN pg_class c ON c.oid = relid")
    actions = tables["public.player_actions_ts"]
    assert actions.total_bytes == raw_total > 0
    assert actions.total_bytes >= actions.table_bytes + actions.index_bytes > 0
    assert actions.row_estimate == raw_rows == db.dataset.actions  # ANALYZEd after loading

    partitions = dict(db.rows("SELECT p.relname, count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
                              " GROUP BY 1"))
    assert {h.table: h.chunk_count for h in r.hypertables} == {t: partitions[t.split(".")[1]] for t in PARTITIONED}
    assert all(h.compressed_chunk_count == 0 for h in r.hypertables)

    assert 0 < len(r.chunks) <= 100
    assert [c.before_compression_bytes for c in r.chunks] == sorted((c.before_compression_bytes for c in r.chunks),
                                                                     reverse=True)
    for c in r.chunks:
        start, end = when(c.range.start_time), when(c.range.end_time)
        assert end - start == timedelta(days=1) and start.hour == 0
        assert c.chunk.endswith(f"_p{start:%Y%m%d}") and c.table in PARTITIONED and not c.compressed

    assert [(a.view, a.bucket_width.ToTimedelta(), a.real_time) for a in r.continuous_aggregates] == [
        ("public.action_type_stats_1h", timedelta(hours=1), True),
        ("public.action_type_stats_1min", timedelta(minutes=1), True)]
    assert list(r.policies) == []  # ingest keeps no job history on plain PostgreSQL

"""A fingerprint of everything the suite stores: rows (count and content hash per table) of the
PostgreSQL databases, keys (type and size) of the Redis database, points of the InfluxDB database.

Equal fingerprints before and after a set of requests mean none of them wrote anything. Keys the
gateway itself writes on every call (the callers' rate-limit buckets) are left out, and a key with
a TTL that is gone afterwards expired (a lease from the first pass): no request deleted it.
"""

from __future__ import annotations

import psycopg
import redis
from psycopg import sql

IGNORED_KEY_PREFIXES = (b"ratelimit:",)
_SIZE = {b"string": "STRLEN", b"hash": "HLEN", b"list": "LLEN", b"set": "SCARD", b"zset": "ZCARD",
         b"stream": "XLEN"}


def postgres(dsn: str) -> dict[str, tuple[int, int]]:
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
        for table in tables:
            count, digest = conn.execute(sql.SQL(
                "SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM {} t").format(
                sql.Identifier(table))).fetchone()
            out[table] = (count, int(digest))
    return out


def redis_keys(url: str) -> dict[bytes, tuple[bytes, int, bool]]:
    out = {}
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(count=1000):
            if key.startswith(IGNORED_KEY_PREFIXES):
                continue
            kind = client.type(key)
            size = client.execute_command(_SIZE[kind], key) if kind in _SIZE else -1
            out[key] = (kind, size, client.pttl(key) >= 0)
    finally:
        client.close()
    return out


def influx_points(server, database: str) -> int:
    result = server.query(f'SELECT count("value") FROM "{database}".."sensor_readings"', database)
    series = result["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def snapshot(stack) -> dict:
    return {
        "postgres": {name: postgres(dsn) for name, dsn in stack.databases.items()},
        "redis": redis_keys(stack.redis_url),
        "influx": influx_points(stack.influx, stack.influx_database),
    }


def differences(before: dict, after: dict) -> list[str]:
    """Human-readable differences between two snapshots."""
    out = []
    for db, tables in after["postgres"].items():
        for table in sorted(set(tables) | set(before["postgres"][db])):
            a, b = before["postgres"][db].get(table), tables.get(table)
            if a != b:
                out.append(f"postgres {db}.{table}: {a} -> {b}")
    for key in sorted(set(before["redis"]) | set(after["redis"])):
        a, b = before["redis"].get(key), after["redis"].get(key)
        expired = a is not None and a[2] and b is None
        if a != b and not expired:
            out.append(f"redis {key[:80]!r}: {a} -> {b}")
    if before["influx"] != after["influx"]:
        out.append(f"influx points: {before['influx']} -> {after['influx']}")
    return out

"""Everything a store holds, read back in a comparable form: equal snapshots mean equal contents."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request

import asyncpg
import redis

INFLUX_DB = "energy_data"


def postgres(url: str) -> dict:
    async def read() -> dict:
        conn = await asyncpg.connect(url)
        try:
            tables = [r["t"] for r in await conn.fetch(
                "SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")]
            rows = {t: [r[0] for r in await conn.fetch(f"SELECT x::text FROM {t} x ORDER BY 1")] for t in tables}
            indexes = [r[0] for r in await conn.fetch(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname")]
            sequences = {r[0]: r[1] for r in await conn.fetch(
                "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")}
            return {"rows": rows, "indexes": indexes, "sequences": sequences}
        finally:
            await conn.close()

    return asyncio.run(read())


_VALUE = {
    b"string": lambda r, k: r.get(k),
    b"hash": lambda r, k: r.hgetall(k),
    b"list": lambda r, k: r.lrange(k, 0, -1),
    b"set": lambda r, k: sorted(r.smembers(k)),
    b"zset": lambda r, k: r.zrange(k, 0, -1, withscores=True),
}


def redis_keys(url: str) -> dict:
    """db -> key -> (type, value, has a TTL). Values, not DUMP payloads: a set's encoding keeps the
    order its members were added in, which a restore need not reproduce."""
    out = {}
    base = url.rsplit("/", 1)[0]
    for name in redis.Redis.from_url(url).info("keyspace"):
        r = redis.Redis.from_url(f"{base}/{name[2:]}")
        out[name] = {key: (r.type(key), _VALUE[r.type(key)](r, key), r.pttl(key) > 0) for key in r.scan_iter()}
    return out


def influx(url: str) -> dict:
    def q(text: str) -> list:
        data = urllib.parse.urlencode({"q": text, "db": INFLUX_DB, "epoch": "ns"}).encode()
        with urllib.request.urlopen(f"{url}/query", data=data, timeout=10) as resp:
            return json.loads(resp.read())["results"][0].get("series", [])

    return {"policies": q(f'SHOW RETENTION POLICIES ON "{INFLUX_DB}"'), "tags": q("SHOW TAG KEYS"),
            "readings": q('SELECT * FROM "energy_30d"."sensor_readings" ORDER BY time')}

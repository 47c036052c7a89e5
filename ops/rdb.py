"""Redis: the backup is an RDB snapshot taken by the server itself (``redis-cli --rdb``, which has the
server fork and stream a point-in-time snapshot, as BGSAVE does, so it works on a remote or managed
Redis without access to its disk). Restore starts a private redis-server on that file and copies every
key into the target with DUMP/RESTORE, TTLs kept, so the target keeps running and its own persistence
(AOF) records the restored keys."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import redis

from services.runtime.cli import UsageError

from . import tools



def client(url: str, db: int | None = None) -> redis.Redis:
    if db is not None:  # the URL's own /<db> would win over a db= argument
        url = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{db}"))
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def server_info(url: str) -> dict:
    return client(url).info()


def keyspace(r: redis.Redis) -> dict[int, int]:
    """db number -> key count."""
    return {int(name[2:]): stats["keys"] for name, stats in r.info("keyspace").items()}


def backup(url: str, out: Path) -> None:
    tools.run([tools.find("redis-cli"), "-u", url, "--no-auth-warning", "--rdb", str(out)])
    if not out.exists() or out.stat().st_size == 0:
        raise tools.ToolFailed("redis-cli --rdb wrote no snapshot")


def restore(url: str, rdb: Path, *, force: bool, server_bin: str = "redis-server") -> int:
    """Copy every key of ``rdb`` into ``url``'s server (all databases); returns the keys restored."""
    target = client(url)
    existing = sum(keyspace(target).values())
    if existing and not force:
        raise UsageError(f"redis: the target holds {existing} keys: restore into an empty Redis, or pass "
                         "--force to flush it first")
    if existing:
        target.flushall()
    restored = 0
    with _reader(rdb, server_bin) as port:
        for db in keyspace(redis.Redis(host="127.0.0.1", port=port)):
            restored += _copy(redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=10), client(url, db))
    return restored


def _copy(src: redis.Redis, dst: redis.Redis) -> int:
    count = 0
    for key in src.scan_iter(count=1000):
        payload, ttl = src.dump(key), src.pttl(key)
        if payload is None:  # expired between SCAN and DUMP
            continue
        dst.restore(key, max(ttl, 0), payload, replace=True)
        count += 1
    return count


@contextlib.contextmanager
def _reader(rdb: Path, server_bin: str) -> Iterator[int]:
    """A private, loopback-only redis-server that loads ``rdb`` and persists nothing; yields its port."""
    with tempfile.TemporaryDirectory(prefix="banhammer-restore-") as work:
        (Path(work) / "dump.rdb").write_bytes(rdb.read_bytes())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([tools.find(server_bin),
                                 "--port", str(port), "--bind", "127.0.0.1", "--dir", work, "--dbfilename", "dump.rdb",
                                 "--save", "", "--appendonly", "no", "--daemonize", "no"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            reader = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
            _wait_loaded(reader, proc)
            yield port
        finally:
            proc.terminate()
            proc.wait(10)


def _wait_loaded(reader: redis.Redis, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            lines = [line for line in (proc.stdout.read() or "").splitlines() if line.strip()]
            raise tools.ToolFailed(f"redis-server could not load the backup: {lines[-1] if lines else 'exited'}")
        try:
            if reader.info("persistence").get("loading") == 0:
                return
        except (redis.ConnectionError, redis.BusyLoadingError):
            pass
        if time.monotonic() > deadline:
            raise tools.ToolFailed("redis-server did not finish loading the backup within 60 s")
        time.sleep(0.1)


def version(url: str) -> str:
    return server_info(url)["redis_version"]


def eviction_safe(policy: str) -> bool:
    # allkeys-* would evict sessions and bans. Durable state never carries a TTL (services/session/
    # KEYS.md), so noeviction and volatile-* (which evict only cache, leases, limits) are safe.
    return not policy.startswith("allkeys-")

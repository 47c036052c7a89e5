"""`python -m ops backup DIR` then `restore DIR` on real servers: every store's contents come back
exactly; the manifest is checked first; a non-empty target is refused unless --force."""

from __future__ import annotations

import json

import pytest
import redis

from . import contents
from .conftest import ops


@pytest.fixture(scope="module")
def backup_dir(source, tmp_path_factory):
    directory = tmp_path_factory.mktemp("backup") / "today"
    done = ops(source.env(), "backup", str(directory))
    assert done.returncode == 0, done.stdout + done.stderr
    return directory, done.stdout


def test_backup_writes_every_store_a_manifest_and_progress(backup_dir):
    directory, out = backup_dir
    manifest = json.loads((directory / "manifest.json").read_text())
    assert set(manifest["stores"]) == {"ingest", "energy", "redis", "influxdb"}
    assert manifest["stores"]["ingest"]["server_version"].startswith("15")
    assert manifest["stores"]["redis"]["keys"] == 6
    assert "pg_dump (PostgreSQL)" in manifest["tools"]["pg_dump"] and "InfluxDB" in manifest["tools"]["influxd"]
    assert {"ingest.pgdump", "energy.pgdump", "redis.rdb"} <= set(manifest["files"])
    assert any(name.startswith("influxdb/") for name in manifest["files"])
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    for store in ("ingest database", "energy database", "redis", "influxdb"):
        assert any(line.startswith(store) and ": done (" in line for line in out.splitlines()), out


def test_round_trip_restores_exact_contents(source, target, backup_dir):
    directory, _ = backup_dir
    done = ops(target.env(), "restore", str(directory))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checksums verified" in done.stdout and "restore complete" in done.stdout
    for name, least in (("ingest", 502), ("energy", 21)):
        original, restored = contents.postgres(getattr(source, name)), contents.postgres(getattr(target, name))
        assert sum(map(len, original["rows"].values())) >= least  # the data really is there
        assert restored == original, name
    assert contents.redis_keys(target.redis.url) == contents.redis_keys(source.redis.url)
    assert len(contents.influx(source.influx.url)["readings"][0]["values"]) == 120
    assert contents.influx(target.influx.url) == contents.influx(source.influx.url)

    # A second restore into the now full targets is refused, naming every store, touching nothing.
    again = ops(target.env(), "restore", str(directory))
    assert again.returncode == 2, again.stdout + again.stderr
    error = again.stderr.strip().splitlines()
    assert len(error) == 1 and "targets not empty" in error[0], again.stderr
    for store in ("ingest database", "energy database", "redis", "influxdb"):
        assert store in error[0]
    assert "Traceback" not in again.stderr

    # --force replaces: a key added since is gone, the contents are the backup's again.
    redis.Redis.from_url(target.redis.url).set("added-after-backup", "x")
    forced = ops(target.env(), "restore", "--force", str(directory))
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert contents.redis_keys(target.redis.url) == contents.redis_keys(source.redis.url)
    assert contents.postgres(target.ingest) == contents.postgres(source.ingest)
    assert contents.influx(target.influx.url) == contents.influx(source.influx.url)


def test_a_damaged_backup_is_refused_before_anything_is_restored(backup_dir, target, tmp_path):
    directory, _ = backup_dir
    damaged = tmp_path / "damaged"
    import shutil

    shutil.copytree(directory, damaged)
    rdb = damaged / "redis.rdb"
    data = bytearray(rdb.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rdb.write_bytes(bytes(data))
    done = ops(target.env(), "restore", "--force", str(damaged))
    assert done.returncode == 2
    assert done.stderr.strip() == "python -m ops restore: backup damaged: checksum mismatch for redis.rdb"


def test_backup_refuses_a_non_empty_directory(source, tmp_path):
    (tmp_path / "old").write_text("x")
    done = ops(source.env(), "backup", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"python -m ops backup: {tmp_path} is not empty: back up into a new or empty directory"


def test_an_unreachable_store_is_one_line(source, tmp_path):
    done = ops(source.env(REDIS_URL="redis://127.0.0.1:1/0"), "backup", str(tmp_path / "b"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m ops backup: ") and "Traceback" not in done.stderr

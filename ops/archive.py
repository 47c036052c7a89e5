"""Backup of every store into one directory, and restore from one: the steps, their order, progress."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.runtime.cli import UsageError

from . import influx, manifest, pg, rdb
from .config import OpsConfig, redact
from .progress import human, size, step

#: Store name -> the file (or directory) holding its backup.
FILES = {"ingest": "ingest.pgdump", "energy": "energy.pgdump", "redis": "redis.rdb", "influxdb": "influxdb"}


def _databases(conf: OpsConfig) -> dict[str, str]:
    return {"ingest": conf.ingest_database_url, "energy": conf.energy_database_url}


def backup(conf: OpsConfig, directory: Path) -> Path:
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty: back up into a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    stores: dict[str, dict] = {}
    for name, url in _databases(conf).items():
        db = asyncio.run(pg.info(url))
        out = directory / FILES[name]
        with step(f"{name} database: pg_dump {redact(url)}") as s:
            pg.dump(url, out, conf.pg_bin)
            s.note = human(size(out))
        stores[name] = {"file": FILES[name], "source": redact(url), "server_version": db.version,
                        "extensions": db.extensions, "tables": db.tables}
    out = directory / FILES["redis"]
    with step(f"redis: snapshot of {redact(conf.redis_url)}") as s:
        info = rdb.server_info(conf.redis_url)
        rdb.backup(conf.redis_url, out)
        s.note = human(size(out))
    stores["redis"] = {"file": FILES["redis"], "source": redact(conf.redis_url),
                       "server_version": info["redis_version"],
                       "keys": sum(rdb.keyspace(rdb.client(conf.redis_url)).values())}
    out = directory / FILES["influxdb"]
    with step(f"influxdb: influxd backup -portable {conf.influxdb_database} from {conf.influx_rpc()}") as s:
        version = influx.Influx(conf.influxdb_url, conf.influxdb_username, conf.influxdb_password).ping()
        influx.backup(conf.influx_rpc(), conf.influxdb_database, out, conf.influxd_bin)
        s.note = human(size(out))
    stores["influxdb"] = {"file": FILES["influxdb"], "source": conf.influxdb_url, "server_version": version,
                          "database": conf.influxdb_database}
    tools = {"pg_dump": pg.dump_version(conf.pg_bin), "influxd": influx.version(conf.influxd_bin)}
    return manifest.write(directory, stores, tools)


def restore(conf: OpsConfig, directory: Path, *, force: bool) -> None:
    m = manifest.read_verified(directory)
    print(f"backup of {m['created_at']}: checksums verified ({len(m['files'])} files)", flush=True)
    stores = m["stores"]
    if not force:
        _refuse_non_empty(conf)
    for name, url in _databases(conf).items():
        with step(f"{name} database: pg_restore into {redact(url)}"):
            asyncio.run(pg.restore(url, directory / stores[name]["file"], name=name, force=force,
                                   timescale="timescaledb" in stores[name]["extensions"], pg_bin=conf.pg_bin))
    with step(f"redis: keys into {redact(conf.redis_url)}") as s:
        keys = rdb.restore(conf.redis_url, directory / stores["redis"]["file"], force=force,
                           server_bin=conf.redis_server_bin)
        s.note = f"{keys} keys"
    target = influx.Influx(conf.influxdb_url, conf.influxdb_username, conf.influxdb_password)
    with step(f"influxdb: influxd restore -portable {stores['influxdb']['database']} into {conf.influx_rpc()}"):
        influx.restore(target, conf.influx_rpc(), stores["influxdb"]["database"], conf.influxdb_database,
                       directory / stores["influxdb"]["file"], force=force, influxd=conf.influxd_bin)


def _refuse_non_empty(conf: OpsConfig) -> None:
    """Every target is checked before anything is restored, so a refusal leaves nothing half done."""
    full = []
    for name, url in _databases(conf).items():
        if tables := asyncio.run(pg.info(url)).tables:
            full.append(f"{name} database ({tables} tables)")
    if keys := sum(rdb.keyspace(rdb.client(conf.redis_url)).values()):
        full.append(f"redis ({keys} keys)")
    if conf.influxdb_database in influx.Influx(conf.influxdb_url, conf.influxdb_username,
                                               conf.influxdb_password).databases():
        full.append(f"influxdb (database {conf.influxdb_database!r} exists)")
    if full:
        raise UsageError(f"restore refused, targets not empty: {'; '.join(full)}; restore into fresh stores, "
                         "or pass --force to replace their contents")

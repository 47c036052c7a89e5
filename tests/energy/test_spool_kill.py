"""Acknowledged readings survive the energy service being killed while InfluxDB is down.

The service runs as its own process here so it can be SIGKILLed (no shutdown hook, no flush):
readings written during an InfluxDB outage are acknowledged as spooled, the process dies, InfluxDB
returns, and a new process on the same spool directory replays every one of them and empties the
spool. InfluxDB keys a point by series and time, so a replay cannot double a reading; the last
batch rewrites points of the first with new values, so a replay out of order, or one that sends
the first batch again after the last, would leave old values behind.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import grpc

from banhammer.energy.v1 import sensor_pb2 as pb
from banhammer.energy.v1 import sensor_pb2_grpc
from tests.harness.health import check_health
from tests.harness.processes import ManagedProcess, free_port, wait_until

from .test_sensors import S, base_time, next_building, reading

REPO = Path(__file__).resolve().parents[2]


def _start(env: dict[str, str], log: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess("energy", [sys.executable, "-m", "services.energy"], log, cwd=REPO,
                          env={**env, "GRPC_PORT": str(port)}).start()
    addr = f"127.0.0.1:{port}"
    wait_until(lambda: check_health(addr, "") == "SERVING", 60, "energy SERVING", proc)
    return proc, addr


def _stored(influx_server, database: str, building: int) -> tuple[int, float]:
    """(count, sum) of the building's stored values."""
    out = influx_server.query(f"SELECT count(value), sum(value) FROM sensor_readings WHERE building_id = '{building}'",
                              db=database)
    series = out["results"][0].get("series") or []
    return tuple(series[0]["values"][0][1:]) if series else (0, 0.0)


def test_spooled_readings_survive_a_kill_and_are_replayed(energy, energy_env, influx_server, tmp_path):
    database = f"energy_kill_{uuid.uuid4().hex[:8]}"
    env = {**energy_env, "PYTHONPATH": f"{REPO}:{REPO / 'gen'}", "INFLUXDB_DATABASE": database,
           "ENERGY_SPOOL_DIR": str(tmp_path / "spool"), "INFLUXDB_TIMEOUT_SECONDS": "1"}
    b, t0 = next_building(), base_time()
    readings = [reading(b, t0 + i * S, float(i), room="kill") for i in range(1500)]
    rewrites = [reading(b, t0 + i * S, float(i) + 1000, room="kill") for i in range(100)]  # same points, new values
    expected = (1500, sum(range(1500)) + 100 * 1000.0)

    first, addr = _start(env, tmp_path / "first.log")
    try:
        with influx_server.down():
            with grpc.insecure_channel(addr) as channel:
                stub = sensor_pb2_grpc.SensorServiceStub(channel)
                replies = [stub.WriteReadings(pb.WriteReadingsRequest(readings=batch), timeout=20)
                           for batch in (readings[:500], readings[500:1000], readings[1000:], rewrites)]
            assert all(r.spooled for r in replies) and [r.accepted_count for r in replies] == [500, 500, 500, 100]
            first.stop(sig=signal.SIGKILL)  # no drain, no flush: only what is on disk counts
            assert first.returncode == -signal.SIGKILL
    finally:
        first.stop()

    with sqlite3.connect(tmp_path / "spool" / "influx-spool.sqlite3") as spool:
        assert spool.execute("SELECT count(*), sum(points) FROM batches").fetchone() == (4, 1600)

    second, _ = _start(env, tmp_path / "second.log")
    try:
        deadline = time.monotonic() + 30
        while _stored(influx_server, database, b)[0] < 1500:
            assert time.monotonic() < deadline, "spool not replayed by the restarted service"
            time.sleep(0.1)
        with sqlite3.connect(tmp_path / "spool" / "influx-spool.sqlite3") as spool:
            deadline = time.monotonic() + 10
            while spool.execute("SELECT count(*) FROM batches").fetchone()[0]:
                assert time.monotonic() < deadline, "replayed batches not removed from the spool"
                time.sleep(0.05)
        assert _stored(influx_server, database, b) == expected
    finally:
        second.stop()

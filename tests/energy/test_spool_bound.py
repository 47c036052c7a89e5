"""ENERGY_SPOOL_MAX_BYTES: while InfluxDB is down, writes are spooled until the spool is full, then
refused with UNAVAILABLE and RetryInfo (nothing of a refused batch is kept); once InfluxDB returns,
every acknowledged reading is stored, and the refused batch, sent again as advised, is accepted."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import duration_pb2

from banhammer.energy.v1 import sensor_pb2 as pb
from tests.harness import retry_delay

from .conftest import _second_runtime, _stubs_of
from .test_sensors import S, base_time, next_building, reading, time_range

BATCH = 100  # readings per write; about 11 KB of line protocol


@pytest.fixture(scope="module")
def bounded_energy(energy, energy_env, tmp_path_factory):
    yield from _second_runtime(energy_env, tmp_path_factory.mktemp("bounded-spool"),
                               ENERGY_SPOOL_MAX_BYTES="50000", INFLUXDB_TIMEOUT_SECONDS="1")


@pytest.fixture(scope="module")
async def bounded(bounded_energy):
    async for stubs in _stubs_of(bounded_energy):
        yield stubs


async def stored(stubs, building: int, t0: int) -> tuple[int, float]:
    """(count, max) of the building's readings in the hour from t0, through the API."""
    q = await stubs.sensors.QueryReadings(pb.QueryReadingsRequest(
        time_range=time_range(t0, t0 + 3600 * S), window=duration_pb2.Duration(seconds=3600),
        aggregate=pb.AGGREGATE_MAX, filter=pb.ReadingFilter(building_ids=[building])))
    return (q.series[0].points[0].count, q.series[0].points[0].value) if q.series else (0, 0.0)


def batch(building: int, t0: int, n: int) -> list:
    return [reading(building, t0 + (n * BATCH + k) * S, float(n * BATCH + k), room="bound") for k in range(BATCH)]


async def test_full_spool_refuses_with_retry_advice_and_keeps_every_acknowledged_reading(bounded, influx_server):
    b, t0 = next_building(), base_time()
    acknowledged = 0
    with influx_server.down():
        while True:
            assert acknowledged < 20 * BATCH, "the spool bound never refused a write"
            try:
                reply = await bounded.sensors.WriteReadings(pb.WriteReadingsRequest(
                    readings=batch(b, t0, acknowledged // BATCH)))
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE, err
                assert retry_delay(err) > 0
                break
            assert reply.spooled and reply.accepted_count == BATCH
            acknowledged += BATCH
        assert acknowledged >= 2 * BATCH  # the bound is bytes, well above one batch
        refused = batch(b, t0, acknowledged // BATCH)
        with pytest.raises(grpc.aio.AioRpcError) as again:  # still full: refused, not half taken
            await bounded.sensors.WriteReadings(pb.WriteReadingsRequest(readings=refused))
        assert again.value.code() == grpc.StatusCode.UNAVAILABLE

    deadline = time.monotonic() + 30
    while (got := await stored(bounded, b, t0)) != (acknowledged, float(acknowledged - 1)):
        assert time.monotonic() < deadline, f"acknowledged readings not all stored after the outage: {got}"
        await asyncio.sleep(0.1)
    reply = await bounded.sensors.WriteReadings(pb.WriteReadingsRequest(readings=refused))  # the advised retry
    assert reply.accepted_count == BATCH
    deadline = time.monotonic() + 30
    while await stored(bounded, b, t0) != (acknowledged + BATCH, float(acknowledged + BATCH - 1)):
        assert time.monotonic() < deadline, "the retried batch was not stored"
        await asyncio.sleep(0.1)

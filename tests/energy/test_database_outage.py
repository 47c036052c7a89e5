"""An energy PostgreSQL outage is UNAVAILABLE with retry advice (the runtime's store guard), for reads
and writes alike, and the service answers again once the database is back."""

from __future__ import annotations

import asyncio
import time

import grpc

from banhammer.energy.v1 import building_pb2 as pb
from tests.harness.statuses import retry_delay

from .helpers import expect_error
from .test_alerts_views import _building


async def test_an_energy_database_outage_is_unavailable_with_retry_advice(stubs, pg_server):
    b = await _building(stubs, "Outage")
    with pg_server.down():
        for call in (stubs.buildings.GetBuilding(pb.GetBuildingRequest(building_id=b)),
                     stubs.buildings.ListTenants(pb.ListTenantsRequest(building_id=b)),
                     stubs.buildings.CreateBuilding(pb.CreateBuildingRequest(
                         building=pb.Building(name="During the outage", address="x")))):
            err = await expect_error(call, grpc.StatusCode.UNAVAILABLE)
            assert err.details() == "energy database unavailable"
            assert retry_delay(err) > 0
    deadline = time.monotonic() + 30
    while True:  # the pool reconnects by itself: no restart of the service
        try:
            got = await stubs.buildings.GetBuilding(pb.GetBuildingRequest(building_id=b))
            break
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
            assert time.monotonic() < deadline, "still UNAVAILABLE 30 s after the database came back"
            await asyncio.sleep(0.2)
    assert got.building.building_id == b

"""BuildingService: CRUD, filters and keyset pages, referential rules on delete, tenant dates."""

from __future__ import annotations

import uuid

import grpc
from google.protobuf import field_mask_pb2

from banhammer.energy.v1 import building_pb2 as pb
from banhammer.energy.v1 import usage_pb2

from .helpers import expect_error, violations


async def _building(stubs, **kw) -> pb.Building:
    fields = dict(name="Tower " + uuid.uuid4().hex[:6], address="Seoul Gangnam-gu 1")
    fields.update(kw)
    return (await stubs.buildings.CreateBuilding(pb.CreateBuildingRequest(building=pb.Building(**fields)))).building


async def test_create_get_update(stubs):
    b = await _building(stubs, total_area=1234.567, floors=12, building_type="office")
    assert b.building_id > 0 and b.total_area == 1234.57 and b.floors == 12 and b.create_time.seconds > 0
    got = (await stubs.buildings.GetBuilding(pb.GetBuildingRequest(building_id=b.building_id))).building
    assert got == b
    bare = await _building(stubs)
    assert not bare.HasField("total_area") and not bare.HasField("floors")
    upd = await stubs.buildings.UpdateBuilding(pb.UpdateBuildingRequest(
        building=pb.Building(building_id=b.building_id, name="Renamed", floors=400, address="ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "floors"])))
    assert upd.building.name == "Renamed" and upd.building.floors == 400 and upd.building.address == b.address
    # Clearing an optional field through the mask.
    cleared = await stubs.buildings.UpdateBuilding(pb.UpdateBuildingRequest(
        building=pb.Building(building_id=b.building_id), update_mask=field_mask_pb2.FieldMask(paths=["total_area"])))
    assert not cleared.building.HasField("total_area")
    await expect_error(stubs.buildings.GetBuilding(pb.GetBuildingRequest(building_id=10**12)), grpc.StatusCode.NOT_FOUND)


async def test_building_validation(stubs):
    err = await expect_error(stubs.buildings.CreateBuilding(pb.CreateBuildingRequest(building=pb.Building(
        name="", address="x" * 1001, total_area=-1, floors=501, building_type="t" * 51))),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert set(violations(err)) == {"building.name", "building.address", "building.total_area", "building.floors",
                                    "building.building_type"}
    b = await _building(stubs)
    for mask in ([], ["building_id"], ["nope"]):
        await expect_error(stubs.buildings.UpdateBuilding(pb.UpdateBuildingRequest(
            building=pb.Building(building_id=b.building_id, name="n"), update_mask=field_mask_pb2.FieldMask(paths=mask))),
            grpc.StatusCode.INVALID_ARGUMENT)


async def test_list_filters_and_pages(stubs):
    kind = "lab_" + uuid.uuid4().hex[:6]
    made = [await _building(stubs, name=f"{n} {kind}", building_type=kind) for n in ("Alpha", "alpine", "Beta")]
    ids, token = [], ""
    while True:
        page = await stubs.buildings.ListBuildings(pb.ListBuildingsRequest(building_type=kind, page_size=2,
                                                                           page_token=token))
        ids += [b.building_id for b in page.buildings]
        token = page.next_page_token
        if not token:
            break
    assert ids == [b.building_id for b in made]
    alp = await stubs.buildings.ListBuildings(pb.ListBuildingsRequest(building_type=kind, name_prefix="ALP"))
    assert [b.name for b in alp.buildings] == [f"Alpha {kind}", f"alpine {kind}"]
    first = await stubs.buildings.ListBuildings(pb.ListBuildingsRequest(building_type=kind, page_size=1))
    await expect_error(stubs.buildings.ListBuildings(pb.ListBuildingsRequest(page_token=first.next_page_token)),
                       grpc.StatusCode.INVALID_ARGUMENT)
    await expect_error(stubs.buildings.ListBuildings(pb.ListBuildingsRequest(page_size=501)),
                       grpc.StatusCode.INVALID_ARGUMENT)


async def test_tenants_dates_and_moves(stubs):
    a, b = await _building(stubs), await _building(stubs)
    t = (await stubs.buildings.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        building_id=a.building_id, name="Cafe", contact_info="010-1234", move_in_date="2024-01-15",
        contract_end_date="2026-01-14")))).tenant
    assert t.tenant_id > 0 and t.move_in_date == "2024-01-15"
    err = await expect_error(stubs.buildings.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        building_id=a.building_id, name="Bad", move_in_date="2024-02-30", contract_end_date="2024-13-01"))),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert set(violations(err)) == {"tenant.move_in_date", "tenant.contract_end_date"}
    err = await expect_error(stubs.buildings.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        building_id=a.building_id, name="Bad", move_in_date="2024-05-01", contract_end_date="2024-05-01"))),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert "tenant.contract_end_date" in violations(err)
    await expect_error(stubs.buildings.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(
        building_id=10**12, name="Ghost"))), grpc.StatusCode.NOT_FOUND)
    # Dates are validated against the resulting record: moving the end before the move-in fails.
    err = await expect_error(stubs.buildings.UpdateTenant(pb.UpdateTenantRequest(
        tenant=pb.Tenant(tenant_id=t.tenant_id, contract_end_date="2023-12-31"),
        update_mask=field_mask_pb2.FieldMask(paths=["contract_end_date"]))), grpc.StatusCode.INVALID_ARGUMENT)
    assert "tenant.contract_end_date" in violations(err)
    moved = await stubs.buildings.UpdateTenant(pb.UpdateTenantRequest(
        tenant=pb.Tenant(tenant_id=t.tenant_id, building_id=b.building_id, contract_end_date=""),
        update_mask=field_mask_pb2.FieldMask(paths=["building_id", "contract_end_date"])))
    assert moved.tenant.building_id == b.building_id and moved.tenant.contract_end_date == ""
    assert moved.tenant.name == "Cafe"
    listed = await stubs.buildings.ListTenants(pb.ListTenantsRequest(building_id=b.building_id))
    assert [x.tenant_id for x in listed.tenants] == [t.tenant_id]
    await stubs.buildings.DeleteTenant(pb.DeleteTenantRequest(tenant_id=t.tenant_id))
    await expect_error(stubs.buildings.GetTenant(pb.GetTenantRequest(tenant_id=t.tenant_id)), grpc.StatusCode.NOT_FOUND)
    await expect_error(stubs.buildings.DeleteTenant(pb.DeleteTenantRequest(tenant_id=t.tenant_id)),
                       grpc.StatusCode.NOT_FOUND)


async def test_delete_building_referential_rules(stubs):
    b = await _building(stubs)
    for name in ("A", "B"):
        await stubs.buildings.CreateTenant(pb.CreateTenantRequest(tenant=pb.Tenant(building_id=b.building_id, name=name)))
    await stubs.usage.RecordUsage(usage_pb2.RecordUsageRequest(records=[usage_pb2.UsageRecord(
        building_id=b.building_id, daily=usage_pb2.DailyConsumption(date="2024-01-01", kwh=5))]))
    await expect_error(stubs.buildings.DeleteBuilding(pb.DeleteBuildingRequest(building_id=b.building_id)),
                       grpc.StatusCode.FAILED_PRECONDITION)
    assert (await stubs.buildings.GetBuilding(pb.GetBuildingRequest(building_id=b.building_id))).building.name
    done = await stubs.buildings.DeleteBuilding(pb.DeleteBuildingRequest(building_id=b.building_id, force=True))
    assert done.deleted_tenant_count == 2
    await expect_error(stubs.buildings.GetBuilding(pb.GetBuildingRequest(building_id=b.building_id)),
                       grpc.StatusCode.NOT_FOUND)
    assert not (await stubs.buildings.ListTenants(pb.ListTenantsRequest(building_id=b.building_id))).tenants
    empty = await _building(stubs)
    assert (await stubs.buildings.DeleteBuilding(pb.DeleteBuildingRequest(
        building_id=empty.building_id))).deleted_tenant_count == 0
    await expect_error(stubs.buildings.DeleteBuilding(pb.DeleteBuildingRequest(building_id=empty.building_id)),
                       grpc.StatusCode.NOT_FOUND)

from __future__ import annotations

from banhammer.energy.v1 import building_pb2, building_pb2_grpc

from . import convert
from .auth import Auth


class BuildingServicer(building_pb2_grpc.BuildingServiceServicer):
    def __init__(self, buildings, auth: Auth) -> None:
        self.buildings, self.auth = buildings, auth

    async def CreateBuilding(self, request, context):
        await self.auth.admin(context)
        created = await self.buildings.create(convert.building_in(request.building))
        return building_pb2.CreateBuildingResponse(building=convert.building(created))

    async def GetBuilding(self, request, context):
        await self.auth.user(context)
        return building_pb2.GetBuildingResponse(building=convert.building(await self.buildings.get(request.building_id)))

    async def UpdateBuilding(self, request, context):
        await self.auth.admin(context)
        updated = await self.buildings.update(convert.building_in(request.building), list(request.update_mask.paths))
        return building_pb2.UpdateBuildingResponse(building=convert.building(updated))

    async def ListBuildings(self, request, context):
        await self.auth.user(context)
        page = await self.buildings.list(request.building_type, request.name_prefix, request.page_size, request.page_token)
        return building_pb2.ListBuildingsResponse(buildings=[convert.building(b) for b in page.items],
                                                  next_page_token=page.next_token)

    async def DeleteBuilding(self, request, context):
        await self.auth.admin(context)
        tenants, _ = await self.buildings.delete(request.building_id, request.force)
        return building_pb2.DeleteBuildingResponse(deleted_tenant_count=tenants)

    async def CreateTenant(self, request, context):
        await self.auth.admin(context)
        created = await self.buildings.create_tenant(convert.tenant_in(request.tenant))
        return building_pb2.CreateTenantResponse(tenant=convert.tenant(created))

    async def GetTenant(self, request, context):
        await self.auth.user(context)
        return building_pb2.GetTenantResponse(tenant=convert.tenant(await self.buildings.get_tenant(request.tenant_id)))

    async def UpdateTenant(self, request, context):
        await self.auth.admin(context)
        paths = list(request.update_mask.paths)
        updated = await self.buildings.update_tenant(convert.tenant_in(request.tenant), paths)
        return building_pb2.UpdateTenantResponse(tenant=convert.tenant(updated))

    async def ListTenants(self, request, context):
        await self.auth.user(context)
        page = await self.buildings.list_tenants(request.building_id, request.page_size, request.page_token)
        return building_pb2.ListTenantsResponse(tenants=[convert.tenant(t) for t in page.items],
                                                next_page_token=page.next_token)

    async def DeleteTenant(self, request, context):
        await self.auth.admin(context)
        await self.buildings.delete_tenant(request.tenant_id)
        return building_pb2.DeleteTenantResponse()

"""Buildings and tenants: validation, referential rules, cache invalidation."""

from __future__ import annotations

import dataclasses
import math

from services.runtime import InvalidArgument, NotFound, pagination

from .models import Building, Page, Tenant, TenantInput
from .session_client import SessionClient
from .store.buildings import BuildingStore
from .validation import Violations, check_mask

BUILDING_FIELDS = {"name", "address", "total_area", "floors", "building_type"}
TENANT_FIELDS = {"building_id", "name", "contact_info", "move_in_date", "contract_end_date"}
BUILDING_LIST_KEY = "building_list"


def dashboard_key(building_id: int) -> str:
    return f"dashboard:{building_id}"


def check_building(b: Building, v: Violations, prefix: str = "building", only: set[str] | None = None) -> None:
    def want(name: str) -> bool:
        return only is None or name in only

    if want("name"):
        v.text(f"{prefix}.name", b.name, 1, 100, unit="characters")
    if want("address"):
        v.text(f"{prefix}.address", b.address, 1, 1000, unit="characters")
    if want("total_area") and b.total_area is not None:
        if not math.isfinite(b.total_area) or not 0 < b.total_area < 100_000_000:
            v.add(f"{prefix}.total_area", "must be > 0 and < 100,000,000")
        elif round(b.total_area, 2) <= 0:
            v.add(f"{prefix}.total_area", "must be at least 0.01 (2 decimals kept)")
    if want("floors") and b.floors is not None and not 1 <= b.floors <= 500:
        v.add(f"{prefix}.floors", "must be 1..500")
    if want("building_type"):
        v.text(f"{prefix}.building_type", b.building_type, 0, 50, unit="characters")


def _day(v: Violations, field: str, raw: str):
    return v.date(field, raw) if raw else None


def tenant_of(t: TenantInput, v: Violations, only: set[str] | None = None, prefix: str = "tenant") -> Tenant:
    """The tenant ``t`` describes, its dates parsed (with ``only``: just the dates named there)."""
    def day(name: str):
        wanted = only is None or name in only
        return _day(v, f"{prefix}.{name}", getattr(t, name)) if wanted else None

    return Tenant(t.tenant_id, t.building_id, t.name, t.contact_info, day("move_in_date"), day("contract_end_date"))


def check_tenant(t: Tenant, v: Violations, prefix: str = "tenant") -> None:
    v.positive_id(f"{prefix}.building_id", t.building_id)
    v.text(f"{prefix}.name", t.name, 1, 100, unit="characters")
    v.text(f"{prefix}.contact_info", t.contact_info, 0, 100, unit="characters")
    if t.move_in_date and t.contract_end_date and t.contract_end_date <= t.move_in_date:
        v.add(f"{prefix}.contract_end_date", "must be after move_in_date")


class Buildings:
    def __init__(self, store: BuildingStore, sessions: SessionClient) -> None:
        self.store = store
        self.sessions = sessions

    async def _invalidate(self, building_id: int) -> None:
        await self.sessions.cache_delete(BUILDING_LIST_KEY)
        await self.sessions.cache_delete(dashboard_key(building_id))

    async def create(self, b: Building) -> Building:
        v = Violations()
        check_building(b, v)
        v.raise_if_any()
        created = await self.store.insert(dataclasses.replace(
            b, total_area=None if b.total_area is None else round(b.total_area, 2)))
        await self._invalidate(created.building_id)
        return created

    async def get(self, building_id: int) -> Building:
        v = Violations()
        v.positive_id("building_id", building_id)
        v.raise_if_any()
        found = await self.store.get(building_id)
        if found is None:
            raise NotFound(f"building {building_id} not found")
        return found

    async def update(self, b: Building, paths: list[str]) -> Building:
        paths = check_mask(paths, BUILDING_FIELDS)
        v = Violations()
        v.positive_id("building.building_id", b.building_id)
        check_building(b, v, only=set(paths))
        v.raise_if_any()
        values = {p: getattr(b, p) for p in paths}
        if values.get("total_area") is not None:
            values["total_area"] = round(values["total_area"], 2)
        updated = await self.store.update(b.building_id, values)
        if updated is None:
            raise NotFound(f"building {b.building_id} not found")
        await self._invalidate(b.building_id)
        return updated

    async def list(self, building_type: str, name_prefix: str, page_size: int, page_token: str) -> Page:
        v = Violations()
        v.text("building_type", building_type, 0, 50, unit="characters")
        v.text("name_prefix", name_prefix, 0, 100, unit="characters")
        size = v.page_size("page_size", page_size, 50, 500)
        v.raise_if_any()
        filters = {"type": building_type, "prefix": name_prefix}
        return Page(*await pagination.id_page(
            "energy.ListBuildings", filters, page_token, size,
            lambda after, limit: self.store.list(building_type, name_prefix, after, limit), lambda row: row.building_id))

    async def delete(self, building_id: int, force: bool) -> tuple[int, list[int]]:
        v = Violations()
        v.positive_id("building_id", building_id)
        v.raise_if_any()
        result = await self.store.delete(building_id, force)
        await self._invalidate(building_id)
        return result

    # --- tenants ---------------------------------------------------------------------------------
    async def create_tenant(self, draft: TenantInput) -> Tenant:
        v = Violations()
        t = tenant_of(draft, v)
        check_tenant(t, v)
        v.raise_if_any()
        created = await self.store.insert_tenant(t)
        await self.sessions.cache_delete(dashboard_key(t.building_id))
        return created

    async def get_tenant(self, tenant_id: int) -> Tenant:
        v = Violations()
        v.positive_id("tenant_id", tenant_id)
        v.raise_if_any()
        found = await self.store.get_tenant(tenant_id)
        if found is None:
            raise NotFound(f"tenant {tenant_id} not found")
        return found

    async def update_tenant(self, draft: TenantInput, paths: list[str]) -> Tenant:
        paths = check_mask(paths, TENANT_FIELDS)
        v = Violations()
        t = tenant_of(draft, v, set(paths))
        v.raise_if_any()
        current = await self.get_tenant(t.tenant_id) if t.tenant_id > 0 else None
        if current is None:
            raise InvalidArgument.field("tenant.tenant_id", "must be > 0")
        merged = dataclasses.replace(current, **{p: getattr(t, p) for p in paths})
        check_tenant(merged, v)  # dates are checked against the resulting record
        v.raise_if_any()
        updated = await self.store.replace_tenant(merged)
        if updated is None:
            raise NotFound(f"tenant {t.tenant_id} not found")
        for building_id in {current.building_id, updated.building_id}:
            await self.sessions.cache_delete(dashboard_key(building_id))
        return updated

    async def list_tenants(self, building_id: int, page_size: int, page_token: str) -> Page:
        v = Violations()
        v.id("building_id", building_id, optional=True)
        size = v.page_size("page_size", page_size, 50, 500)
        v.raise_if_any()
        filters = {"building": building_id}
        return Page(*await pagination.id_page(
            "energy.ListTenants", filters, page_token, size,
            lambda after, limit: self.store.list_tenants(building_id, after, limit), lambda row: row.tenant_id))

    async def delete_tenant(self, tenant_id: int) -> None:
        current = await self.get_tenant(tenant_id)
        if not await self.store.delete_tenant(tenant_id):
            raise NotFound(f"tenant {tenant_id} not found")
        await self.sessions.cache_delete(dashboard_key(current.building_id))

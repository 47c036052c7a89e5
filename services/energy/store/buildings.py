"""buildings and tenants tables."""

from __future__ import annotations

import asyncpg

from services.runtime import FailedPrecondition, NotFound
from services.runtime.store_errors import guard

from ..models import Building, Tenant
from . import STORE

_B = "id, name, address, total_area, floors, building_type, created_at, updated_at"
_T = "id, building_id, name, contact_info, move_in_date, contract_end_date, created_at, updated_at"


def _building(r: asyncpg.Record) -> Building:
    area = None if r["total_area"] is None else float(r["total_area"])
    return Building(r["id"], r["name"], r["address"], area, r["floors"], r["building_type"], r["created_at"], r["updated_at"])


def _tenant(r: asyncpg.Record) -> Tenant:
    return Tenant(r["id"], r["building_id"], r["name"], r["contact_info"], r["move_in_date"], r["contract_end_date"],
                  r["created_at"], r["updated_at"])


@guard(STORE)
class BuildingStore:
    def __init__(self, pool) -> None:
        self._pool = pool

    async def insert(self, b: Building) -> Building:
        row = await self._pool.pool.fetchrow(
            f"INSERT INTO buildings (name, address, total_area, floors, building_type) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {_B}", b.name, b.address, b.total_area, b.floors, b.building_type)
        return _building(row)

    async def get(self, building_id: int) -> Building | None:
        row = await self._pool.pool.fetchrow(f"SELECT {_B} FROM buildings WHERE id = $1", building_id)
        return None if row is None else _building(row)

    async def exists(self, building_id: int) -> bool:
        return await self._pool.pool.fetchval("SELECT EXISTS (SELECT 1 FROM buildings WHERE id = $1)", building_id)

    async def update(self, building_id: int, values: dict) -> Building | None:
        # Column names come from the fixed update-mask whitelist, never from the caller.
        sets = ", ".join(f"{col} = ${i + 2}" for i, col in enumerate(values))
        row = await self._pool.pool.fetchrow(
            f"UPDATE buildings SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_B}", building_id, *values.values())
        return None if row is None else _building(row)

    async def list(self, building_type: str, name_prefix: str, after_id: int, limit: int) -> list[Building]:
        rows = await self._pool.pool.fetch(
            f"SELECT {_B} FROM buildings WHERE id > $1 AND ($2 = '' OR building_type = $2)"
            f" AND ($3 = '' OR lower(left(name, length($3))) = lower($3)) ORDER BY id LIMIT $4",
            after_id, building_type, name_prefix, limit)
        return [_building(r) for r in rows]

    async def delete(self, building_id: int, force: bool) -> tuple[int, list[int]]:
        """(tenants deleted, ids of open alerts cleared). Usage and rules go with the building (cascade)."""
        async with self._pool.pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchval("SELECT id FROM buildings WHERE id = $1 FOR UPDATE", building_id)
            if locked is None:
                raise NotFound(f"building {building_id} not found")
            tenants = await conn.fetchval("SELECT count(*) FROM tenants WHERE building_id = $1", building_id)
            if tenants and not force:
                raise FailedPrecondition(f"building {building_id} has {tenants} tenants; delete them or pass force")
            await conn.execute("DELETE FROM tenants WHERE building_id = $1", building_id)
            cleared = await conn.fetch(
                "UPDATE alerts SET state = 3, cleared_at = now() WHERE building_id = $1 AND state IN (1, 2) RETURNING id",
                building_id)
            await conn.execute("DELETE FROM buildings WHERE id = $1", building_id)
        return tenants, [r["id"] for r in cleared]

    async def summaries(self) -> list[tuple[int, str, str]]:
        rows = await self._pool.pool.fetch("SELECT id, name, address FROM buildings ORDER BY id")
        return [(r["id"], r["name"], r["address"]) for r in rows]

    # --- tenants ---------------------------------------------------------------------------------
    async def insert_tenant(self, t: Tenant) -> Tenant:
        try:
            row = await self._pool.pool.fetchrow(
                f"INSERT INTO tenants (building_id, name, contact_info, move_in_date, contract_end_date)"
                f" VALUES ($1, $2, $3, $4, $5) RETURNING {_T}",
                t.building_id, t.name, t.contact_info, t.move_in_date, t.contract_end_date)
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"building {t.building_id} not found") from None
        return _tenant(row)

    async def get_tenant(self, tenant_id: int) -> Tenant | None:
        row = await self._pool.pool.fetchrow(f"SELECT {_T} FROM tenants WHERE id = $1", tenant_id)
        return None if row is None else _tenant(row)

    async def replace_tenant(self, t: Tenant) -> Tenant | None:
        try:
            row = await self._pool.pool.fetchrow(
                f"UPDATE tenants SET building_id = $2, name = $3, contact_info = $4, move_in_date = $5,"
                f" contract_end_date = $6, updated_at = now() WHERE id = $1 RETURNING {_T}",
                t.tenant_id, t.building_id, t.name, t.contact_info, t.move_in_date, t.contract_end_date)
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"building {t.building_id} not found") from None
        return None if row is None else _tenant(row)

    async def list_tenants(self, building_id: int, after_id: int, limit: int) -> list[Tenant]:
        rows = await self._pool.pool.fetch(
            f"SELECT {_T} FROM tenants WHERE id > $1 AND ($2::bigint = 0 OR building_id = $2) ORDER BY id LIMIT $3",
            after_id, building_id, limit)
        return [_tenant(r) for r in rows]

    async def delete_tenant(self, tenant_id: int) -> bool:
        return await self._pool.pool.fetchval("DELETE FROM tenants WHERE id = $1 RETURNING true", tenant_id) is not None

    async def tenant_count(self, building_id: int) -> int:
        return await self._pool.pool.fetchval("SELECT count(*) FROM tenants WHERE building_id = $1", building_id)

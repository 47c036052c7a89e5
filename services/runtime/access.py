"""Who may call which RPC: the policy the contracts declare (``protos/banhammer/common/v1/access.proto``).

Each RPC names the access it needs (the ``access`` method option) and each access names the session
roles that hold it (the ``roles`` option on its enum value). The gateway's authorizer enforces this
on every call (services/session/gateway.py); the energy service enforces the same table on direct
calls. No role or RPC is listed by hand anywhere else.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass

from banhammer.common.v1 import access_pb2

AUTHENTICATED = access_pb2.ACCESS_AUTHENTICATED
SERVICE = access_pb2.ACCESS_SERVICE
ADMIN = access_pb2.ACCESS_ADMIN
ENERGY_USER = access_pb2.ACCESS_ENERGY_USER
ENERGY_ADMIN = access_pb2.ACCESS_ENERGY_ADMIN
ENERGY_SERVICE = access_pb2.ACCESS_ENERGY_SERVICE


@dataclass(frozen=True)
class AccessPolicy:
    methods: dict[str, int]  # "/pkg.Service/Method" -> the access it needs
    holders: dict[int, frozenset[str]]  # access -> the roles that hold it

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role some access lists (any other role holds nothing)."""
        return tuple(sorted({role for roles in self.holders.values() for role in roles}))

    def grants(self, role: str) -> frozenset[int]:
        return frozenset(access for access, roles in self.holders.items() if role in roles)

    def allows(self, role: str, access: int) -> bool:
        return role in self.holders.get(access, ())

    def covers(self, role: str, other: str) -> bool:
        """Whether ``role`` holds every access ``other`` holds (minting ``other`` raises nothing)."""
        return self.grants(other) <= self.grants(role)

    def mask(self, role: str) -> int:
        """The role's accesses as bits (bit n: access n), as the gateway's Redis script reads them."""
        return sum(1 << access for access in self.grants(role))

    @staticmethod
    def name(access: int) -> str:
        """``ACCESS_ENERGY_ADMIN`` -> "energy_admin"."""
        return access_pb2.Access.Name(access).removeprefix("ACCESS_").lower()

    def describe(self, access: int) -> str:
        return f"{self.name(access)} access (roles: {', '.join(sorted(self.holders.get(access, ())))})"


@functools.cache
def load() -> AccessPolicy:
    """The policy of every banhammer RPC, from the generated descriptors (unannotated: SERVICE)."""
    import banhammer

    modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(banhammer.__path__, "banhammer.")
               if m.name.endswith("_pb2")]
    methods: dict[str, int] = {}
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                access = options.Extensions[access_pb2.access] if options.HasExtension(access_pb2.access) else 0
                methods[f"/{service.full_name}/{method.name}"] = access or SERVICE
    holders = {value.number: frozenset(value.GetOptions().Extensions[access_pb2.roles])
               for value in access_pb2.Access.DESCRIPTOR.values if value.number}
    return AccessPolicy(methods, holders)

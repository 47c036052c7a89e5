"""The access policy the contracts declare (protos/banhammer/common/v1/access.proto): its invariants.

The gateway and the energy service enforce this table as loaded here; tests/e2e/test_roles.py
checks the enforcement through the real gateway, RPC by RPC and role by role.
"""

from __future__ import annotations

import importlib
import pkgutil

from banhammer.common.v1 import access_pb2
from services.runtime import access

BANHAMMER_ACCESSES = {access.SERVICE, access.ADMIN}
ENERGY_ACCESSES = {access.ENERGY_USER, access.ENERGY_ADMIN, access.ENERGY_SERVICE}


def test_every_rpc_declares_its_access():
    import banhammer

    unannotated = []
    for info in pkgutil.walk_packages(banhammer.__path__, "banhammer."):
        if info.name.endswith("_pb2"):
            for service in importlib.import_module(info.name).DESCRIPTOR.services_by_name.values():
                unannotated += [f"{service.full_name}/{m.name}" for m in service.methods
                                if not m.GetOptions().HasExtension(access_pb2.access)]
    assert unannotated == []
    assert len(access.load().methods) >= 60


def test_each_domain_has_its_own_scope():
    policy = access.load()
    for role in ("energy_user", "energy_admin", "user"):
        assert not policy.grants(role) & BANHAMMER_ACCESSES, role
    assert not policy.grants("service") & {access.ADMIN, access.ENERGY_ADMIN, access.ENERGY_USER}
    assert policy.holders[access.ADMIN] == {"admin"}  # only a BanHammer admin is a gateway admin
    assert policy.grants("admin") == set(policy.holders)  # ... and it holds everything
    # Every RPC an energy role reaches is an energy RPC.
    for path, needed in policy.methods.items():
        if policy.allows("energy_admin", needed) and needed != access.AUTHENTICATED:
            assert path.startswith("/banhammer.energy.v1."), path


def test_the_legacy_user_role_is_the_least_privileged_scope():
    """Sessions minted before the split carry "user": exactly what an energy user holds."""
    policy = access.load()
    assert policy.grants("user") == policy.grants("energy_user") == {access.AUTHENTICATED, access.ENERGY_USER}
    assert not any(policy.grants(role) < policy.grants("user") for role in policy.roles)  # none holds less


def test_covers_is_holding_every_access_of_the_other_role():
    policy = access.load()
    assert policy.covers("admin", "energy_admin") and policy.covers("energy_admin", "energy_user")
    assert not policy.covers("service", "energy_admin") and not policy.covers("energy_admin", "service")
    assert not policy.covers("energy_admin", "admin") and not policy.covers("service", "admin")
    assert policy.grants("game_server") == set() and policy.covers("service", "game_server")  # unknown: nothing


def test_access_bits_for_the_gateway_script():
    policy = access.load()
    assert policy.mask("admin") == sum(1 << a for a in policy.holders)
    assert policy.mask("service") == (1 << access.AUTHENTICATED) | (1 << access.SERVICE) | (1 << access.ENERGY_SERVICE)
    assert policy.mask("nobody") == 0

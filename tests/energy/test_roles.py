"""Direct calls to the energy service (no gateway): the same role table as at the gateway, and a
trusted-network fallback that never reaches beyond the energy domain."""

from __future__ import annotations

import uuid

import grpc

from banhammer.energy.v1 import building_pb2, user_pb2
from banhammer.session.v1 import session_pb2, session_pb2_grpc
from services.runtime import access, gateway_headers
from tests.harness.rpcs import REFUSED, call, contract_rpcs

from .helpers import expect_error

PASSWORD = "energy-roles-password"
OPEN_DIRECTLY = {"Authenticate", "RegisterUser"}  # login and sign-up (an energy admin's: see below)


def test_with_auth_required_each_rpc_needs_what_the_contract_says(energy, strict_energy):
    policy = access.load()
    own_id = 10**9  # energy users are "user:<own_id>": GetUser of oneself is allowed (of others: admins)
    with grpc.insecure_channel(energy.addr) as direct:
        sessions = session_pb2_grpc.SessionServiceStub(direct)
        tokens = {role: sessions.CreateSession(session_pb2.CreateSessionRequest(
                      subject=f"user:{own_id}" if role in ("energy_user", "user") else f"direct-{role}", role=role)).token
                  for role in policy.roles}
    own = {"GetUser": user_pb2.GetUserRequest(user_id=own_id).SerializeToString()}
    wrong = []
    with grpc.insecure_channel(strict_energy.addr) as channel:
        for rpc in (r for r in contract_rpcs() if r.package == "banhammer.energy.v1"):
            for role in (None, *policy.roles):
                md = (("authorization", f"Bearer {tokens[role]}"),) if role else ()
                code = call(channel, rpc, own.get(rpc.method, b""), md)
                allowed = rpc.method in OPEN_DIRECTLY or (role and policy.allows(role, policy.methods[rpc.path]))
                if allowed == (code in REFUSED):
                    wrong.append((role, rpc.method, code.name))
                elif not allowed and code != (grpc.StatusCode.PERMISSION_DENIED if role else
                                              grpc.StatusCode.UNAUTHENTICATED):
                    wrong.append((role, rpc.method, code.name))
    assert wrong == []


async def test_the_trusted_fallback_is_an_energy_admin_and_no_more(stubs, channel):
    """ENERGY_REQUIRE_AUTH off: a direct caller without credentials administers energy, but an admin
    account it creates logs in as "energy_admin", which holds no BanHammer access."""
    name = "fallback_" + uuid.uuid4().hex[:8]
    await stubs.users.RegisterUser(user_pb2.RegisterUserRequest(
        username=name, email=f"{name}@example.com", password=PASSWORD, role=user_pb2.ROLE_ADMIN))
    login = await stubs.users.Authenticate(user_pb2.AuthenticateRequest(username=name, password=PASSWORD))
    claims = await session_pb2_grpc.SessionServiceStub(channel).ValidateSession(
        session_pb2.ValidateSessionRequest(token=login.session_token))
    assert claims.session.role == "energy_admin"
    assert not access.load().grants(claims.session.role) & {access.SERVICE, access.ADMIN}


async def test_a_service_caller_is_not_an_energy_admin(stubs):
    """Admitted by the gateway as "service" (a game server, a meter, the login front end)."""
    as_service = ((gateway_headers.SUBJECT, "game-server-1"), (gateway_headers.ROLE, "service"))
    name = "svc_" + uuid.uuid4().hex[:8]
    await expect_error(stubs.users.RegisterUser(user_pb2.RegisterUserRequest(
        username=name, email=f"{name}@example.com", password=PASSWORD, role=user_pb2.ROLE_ADMIN),
        metadata=as_service), grpc.StatusCode.PERMISSION_DENIED)
    await expect_error(stubs.buildings.CreateBuilding(building_pb2.CreateBuildingRequest(
        building=building_pb2.Building(name="x", address="y")), metadata=as_service), grpc.StatusCode.PERMISSION_DENIED)
    made = await stubs.users.RegisterUser(user_pb2.RegisterUserRequest(  # sign-up of an ordinary user: yes
        username=name, email=f"{name}@example.com", password=PASSWORD), metadata=as_service)
    assert made.user.role == user_pb2.ROLE_USER

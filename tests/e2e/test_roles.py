"""Roles and scopes through the real gateway (authentication on): every RPC × every role, and no
RPC that hands out a credential hands out more than its caller holds.

The expected table is written here from the domain rules (the README's "Roles and scopes"), not
read from the contracts, and checked against both the contracts and the running suite.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
import pytest

from banhammer.energy.v1 import user_pb2, user_pb2_grpc
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc, session_pb2, session_pb2_grpc
from services.runtime import access
from tests.harness import auth_metadata
from tests.harness.rpcs import REFUSED, Rpc, call, contract_rpcs

ROLES = ("anonymous", "energy_user", "energy_admin", "service", "admin")
PASSWORD = "roles-test-password-1"
ENERGY = "banhammer.energy.v1"

# BanHammer RPCs only its administrators may call; every other ingest / query / session RPC is
# for game servers and internal callers (role "service").
ADMIN_ONLY = {"CreateSession", "RevokeSubjectSessions", "ListSessions", "Ban", "Unban", "ListBans",
              "GetBanHistory", "ListRules", "GetRule", "GetStorageStats", "CreateRule", "UpdateRule", "DryRunRule",
              "ListRuleChanges"}
ANY_SESSION = {"RefreshSession", "Subscribe"}  # one's own session; notifications
# Energy RPCs for every energy user; the feeds and front door for "service" and energy admins;
# every other energy RPC is energy administration.
ENERGY_READS = {"GetBuilding", "ListBuildings", "GetTenant", "ListTenants", "QueryReadings", "ExportReadingsCsv",
                "GetDailyUsage", "GetMonthlyUsage", "GetForecast", "GetDashboard", "ListBuildingSummaries",
                "ListAlertRules", "ListAlerts", "AcknowledgeAlert", "GetUser"}
ENERGY_FEEDS = {"WriteReadings", "StreamReadings", "RecordUsage", "RegisterUser", "Authenticate"}


def expected(role: str, rpc: Rpc) -> bool:
    if role == "admin":
        return True
    if role == "anonymous":
        return False
    if rpc.method in ANY_SESSION and rpc.package != ENERGY:
        return True
    if rpc.package == ENERGY:
        if rpc.method in ENERGY_READS:
            return role in ("energy_user", "energy_admin")
        if rpc.method in ENERGY_FEEDS:
            return role in ("service", "energy_admin")
        return role == "energy_admin"
    return role == "service" and rpc.method not in ADMIN_ONLY


@dataclass(frozen=True)
class Login:
    token: str
    user_id: int


@pytest.fixture(scope="module")
def logins(gateway, gateway_tokens) -> dict[str, Login]:
    """Real energy logins through the gateway: the sign-up / login front end holds a "service"
    token; an energy admin's account is created by a BanHammer admin."""
    out = {}
    with grpc.insecure_channel(gateway.addr) as channel:
        users = user_pb2_grpc.UserServiceStub(channel)
        front = auth_metadata(gateway_tokens["service"])
        for role, pb_role, registrar in (("energy_user", user_pb2.ROLE_USER, "service"),
                                         ("energy_admin", user_pb2.ROLE_ADMIN, "admin")):
            name = f"roles_{role}_{uuid.uuid4().hex[:8]}"
            users.RegisterUser(user_pb2.RegisterUserRequest(username=name, email=f"{name}@example.com",
                                                            password=PASSWORD, role=pb_role),
                               metadata=auth_metadata(gateway_tokens[registrar]), timeout=30)
            reply = users.Authenticate(user_pb2.AuthenticateRequest(username=name, password=PASSWORD),
                                       metadata=front, timeout=30)
            out[role] = Login(reply.session_token, reply.user.user_id)
    return out


@pytest.fixture(scope="module")
def tokens(gateway_tokens, logins) -> dict[str, str | None]:
    return {"anonymous": None, "service": gateway_tokens["service"], "admin": gateway_tokens["admin"],
            **{role: login.token for role, login in logins.items()}}


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return auth_metadata(token) if token else ()


def test_the_contracts_declare_this_table():
    policy = access.load()
    rpcs = contract_rpcs()
    assert {r.method for r in rpcs} >= ADMIN_ONLY | ANY_SESSION | ENERGY_READS | ENERGY_FEEDS
    wrong = [(role, r.path) for r in rpcs for role in ROLES[1:]
             if policy.allows(role, policy.methods[r.path]) != expected(role, r)]
    assert wrong == []


def test_every_rpc_for_every_role_through_the_gateway(gateway, tokens, logins):
    """Allowed: anything but a refusal (an empty request may well be INVALID_ARGUMENT or NOT_FOUND).
    Refused: UNAUTHENTICATED without credentials, PERMISSION_DENIED with them."""
    # GetUser of one's own account is what an energy user may read (others: energy admins).
    own = {"/banhammer.energy.v1.UserService/GetUser":
           user_pb2.GetUserRequest(user_id=logins["energy_user"].user_id).SerializeToString()}
    rpcs = contract_rpcs()
    assert len(rpcs) >= 60
    wrong = []
    with grpc.insecure_channel(gateway.addr) as channel:
        for role in ROLES:
            md = _metadata(tokens[role])
            for rpc in rpcs:
                code = call(channel, rpc, own.get(rpc.path, b""), md)
                if not expected(role, rpc):
                    want = grpc.StatusCode.UNAUTHENTICATED if role == "anonymous" else grpc.StatusCode.PERMISSION_DENIED
                    if code != want:
                        wrong.append((role, rpc.path, f"expected {want.name}, got {code.name}"))
                elif code in (*REFUSED, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE,
                              grpc.StatusCode.INTERNAL):
                    wrong.append((role, rpc.path, f"allowed, got {code.name}"))
    assert wrong == []


def _session_role(channel, service_token: str, token: str) -> str:
    reply = session_pb2_grpc.SessionServiceStub(channel).ValidateSession(
        session_pb2.ValidateSessionRequest(token=token), metadata=auth_metadata(service_token), timeout=10)
    return reply.session.role


def test_energy_logins_carry_energy_roles_only(gateway, gateway_tokens, logins):
    policy = access.load()
    with grpc.insecure_channel(gateway.addr) as channel:
        for role, login in logins.items():
            held = _session_role(channel, gateway_tokens["service"], login.token)
            assert held == role
            assert not policy.grants(held) & {access.SERVICE, access.ADMIN}


def test_no_rpc_mints_a_role_above_the_callers(gateway, gateway_tokens, tokens, logins, suite):
    """CreateSession, RefreshSession (rotation), RegisterUser and SetUserRole, by every role: what
    comes back never holds an access its caller lacks."""
    policy = access.load()
    minted = []
    with grpc.insecure_channel(gateway.addr) as channel:
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        users = user_pb2_grpc.UserServiceStub(channel)
        for caller in ROLES[1:]:
            md = auth_metadata(tokens[caller])
            for wanted in policy.roles:
                try:
                    made = sessions.CreateSession(session_pb2.CreateSessionRequest(
                        subject=f"mint-{caller}", role=wanted), metadata=md, timeout=10)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, (caller, wanted, exc.code())
                    continue
                minted.append((caller, made.session.role))
            # Rotating a session of one's own role gives back that role, nothing more.
            with grpc.insecure_channel(suite.addr) as direct:
                own = session_pb2_grpc.SessionServiceStub(direct).CreateSession(session_pb2.CreateSessionRequest(
                    subject=f"rotate-{caller}", role=caller), timeout=10).token
            rotated = sessions.RefreshSession(session_pb2.RefreshSessionRequest(token=own, rotate=True),
                                              metadata=md, timeout=10)
            minted.append((caller, rotated.session.role))
            # An energy admin account can only come from a caller holding energy administration.
            name = f"mint_{caller}_{uuid.uuid4().hex[:8]}"
            try:
                made_user = users.RegisterUser(user_pb2.RegisterUserRequest(
                    username=name, email=f"{name}@example.com", password=PASSWORD, role=user_pb2.ROLE_ADMIN),
                    metadata=md, timeout=30)
                minted.append((caller, "energy_admin"))
                assert made_user.user.role == user_pb2.ROLE_ADMIN
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, (caller, exc.code())
            try:
                users.SetUserRole(user_pb2.SetUserRoleRequest(user_id=logins["energy_user"].user_id,
                                                              role=user_pb2.ROLE_USER), metadata=md, timeout=10)
                minted.append((caller, "energy_user"))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, (caller, exc.code())
    assert [m for m in minted if not policy.covers(*m)] == []
    assert {caller for caller, _ in minted} == {"energy_user", "energy_admin", "service", "admin"}
    assert ("admin", "admin") in minted and ("energy_admin", "energy_admin") in minted


def test_a_service_token_cannot_climb_to_admin(gateway, gateway_tokens):
    """The escalation chain of issue 16, step by step: each step is refused, and the only
    credential a login can yield is an energy one."""
    service = auth_metadata(gateway_tokens["service"])
    name = f"climb_{uuid.uuid4().hex[:8]}"
    ban = ban_pb2.BanRequest(subject="climb-victim", reason="escalation test",
                             admin_source=ban_pb2.AdminSource(admin="climber"), permanent=True)
    with grpc.insecure_channel(gateway.addr) as channel:
        users = user_pb2_grpc.UserServiceStub(channel)
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        bans = ban_pb2_grpc.BanServiceStub(channel)
        register = user_pb2.RegisterUserRequest(username=name, email=f"{name}@example.com", password=PASSWORD,
                                                role=user_pb2.ROLE_ADMIN)
        with pytest.raises(grpc.RpcError) as err:  # 1. service → RegisterUser(ROLE_ADMIN)
            users.RegisterUser(register, metadata=service, timeout=30)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as err:  # ... so there is no such account to log in as
            users.Authenticate(user_pb2.AuthenticateRequest(username=name, password=PASSWORD),
                               metadata=service, timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # 2. Even a real energy admin's login (account made by a BanHammer admin) is energy-only.
        users.RegisterUser(register, metadata=auth_metadata(gateway_tokens["admin"]), timeout=30)
        login = users.Authenticate(user_pb2.AuthenticateRequest(username=name, password=PASSWORD),
                                   metadata=service, timeout=30)
        assert _session_role(channel, gateway_tokens["service"], login.session_token) == "energy_admin"
        # 3. Neither the service token nor that login reaches session administration or bans.
        for md in (service, auth_metadata(login.session_token)):
            steps = (lambda: sessions.CreateSession(session_pb2.CreateSessionRequest(subject="climber", role="admin"),
                                                    metadata=md, timeout=10),
                     lambda: bans.Ban(ban, metadata=md, timeout=10),
                     lambda: bans.ListBans(ban_pb2.ListBansRequest(), metadata=md, timeout=10))
            for step in steps:
                with pytest.raises(grpc.RpcError) as err:
                    step()
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert not bans.IsBanned(ban_pb2.IsBannedRequest(subject="climb-victim"), metadata=service,
                                 timeout=10).banned

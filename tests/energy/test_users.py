"""UserService against real PostgreSQL and the session service: argon2id hashes only, timing-safe
login, sessions from SessionService, roles and their enforcement with ENERGY_REQUIRE_AUTH."""

from __future__ import annotations

import time
import uuid

import asyncpg
import grpc

from banhammer.energy.v1 import building_pb2, user_pb2
from banhammer.session.v1 import session_pb2, session_pb2_grpc

from .helpers import expect_error, violations

PASSWORD = "correct horse battery staple"


def _name() -> str:
    return "u_" + uuid.uuid4().hex[:10]


async def _register(stubs, role=user_pb2.ROLE_USER, password=PASSWORD, metadata=()):
    name = _name()
    reply = await stubs.users.RegisterUser(user_pb2.RegisterUserRequest(
        username=name, email=f"{name}@Example.com", password=password, role=role), metadata=metadata)
    return reply.user


async def test_register_stores_only_an_argon2id_hash(stubs, energy_env):
    user = await _register(stubs)
    assert user.user_id > 0 and user.role == user_pb2.ROLE_USER
    conn = await asyncpg.connect(energy_env["ENERGY_DATABASE_URL"])
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user.user_id)
        dump = "".join(str(r) for r in await conn.fetch("SELECT * FROM users"))
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$v=19$")
    assert PASSWORD not in dump


async def test_register_validation_and_duplicates(stubs):
    err = await expect_error(stubs.users.RegisterUser(user_pb2.RegisterUserRequest(
        username="a b", email="no-at-sign", password="short")), grpc.StatusCode.INVALID_ARGUMENT)
    assert set(violations(err)) == {"username", "email", "password"}
    user = await _register(stubs)
    await expect_error(stubs.users.RegisterUser(user_pb2.RegisterUserRequest(
        username=user.username, email="other@example.com", password=PASSWORD)), grpc.StatusCode.ALREADY_EXISTS)
    # Emails compare case-insensitively.
    await expect_error(stubs.users.RegisterUser(user_pb2.RegisterUserRequest(
        username=_name(), email=user.email.upper(), password=PASSWORD)), grpc.StatusCode.ALREADY_EXISTS)


async def test_authenticate_opens_a_session(stubs, channel):
    user = await _register(stubs)
    reply = await stubs.users.Authenticate(user_pb2.AuthenticateRequest(username=user.username, password=PASSWORD))
    assert reply.user.user_id == user.user_id and reply.session_token and reply.session_id
    assert reply.expire_time.seconds > time.time()
    claims = await session_pb2_grpc.SessionServiceStub(channel).ValidateSession(
        session_pb2.ValidateSessionRequest(token=reply.session_token))
    assert claims.session.subject == f"user:{user.user_id}"
    assert claims.session.role == "energy_user"  # an energy scope, never a BanHammer role
    assert claims.session.attributes["username"] == user.username


async def test_wrong_password_and_unknown_user_look_the_same(stubs):
    user = await _register(stubs)
    wrong = await expect_error(stubs.users.Authenticate(user_pb2.AuthenticateRequest(
        username=user.username, password="wrong password!")), grpc.StatusCode.UNAUTHENTICATED)
    unknown = await expect_error(stubs.users.Authenticate(user_pb2.AuthenticateRequest(
        username=_name(), password="wrong password!")), grpc.StatusCode.UNAUTHENTICATED)
    assert wrong.details() == unknown.details()


async def test_unknown_user_costs_a_full_verification(service):
    """Timing safety: an unknown user is verified against a dummy hash, not answered at once."""
    stored = await service.passwords.hash(PASSWORD)

    async def timed(hash_):
        start = time.perf_counter()
        ok, _ = await service.passwords.verify(hash_, "not the password")
        assert not ok
        return time.perf_counter() - start

    # Minimums resist scheduling noise on a loaded machine; without the dummy hash an unknown user
    # would cost well under a tenth of a verification.
    known = min([await timed(stored) for _ in range(9)])
    unknown = min([await timed(None) for _ in range(9)])
    assert 0.4 < unknown / known < 2.5, (known, unknown)


async def test_get_list_and_set_role(stubs):
    user = await _register(stubs)
    got = await stubs.users.GetUser(user_pb2.GetUserRequest(user_id=user.user_id))
    assert got.user.username == user.username
    await expect_error(stubs.users.GetUser(user_pb2.GetUserRequest(user_id=10**9)), grpc.StatusCode.NOT_FOUND)
    seen, token = [], ""
    while True:
        page = await stubs.users.ListUsers(user_pb2.ListUsersRequest(page_size=2, page_token=token))
        seen += [u.user_id for u in page.users]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and user.user_id in seen
    err = await expect_error(stubs.users.ListUsers(user_pb2.ListUsersRequest(role=user_pb2.ROLE_ADMIN, page_token=
        (await stubs.users.ListUsers(user_pb2.ListUsersRequest(page_size=1))).next_page_token)),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert "page_token" in violations(err)
    updated = await stubs.users.SetUserRole(user_pb2.SetUserRoleRequest(user_id=user.user_id, role=user_pb2.ROLE_ADMIN))
    assert updated.user.role == user_pb2.ROLE_ADMIN
    admins = await stubs.users.ListUsers(user_pb2.ListUsersRequest(role=user_pb2.ROLE_ADMIN, page_size=500))
    assert user.user_id in [u.user_id for u in admins.users]


async def test_roles_are_enforced_with_auth_on(stubs, strict_stubs, channel):
    """With ENERGY_REQUIRE_AUTH, the session's role decides; a role change revokes sessions."""
    plain = await _register(stubs)
    login = await stubs.users.Authenticate(user_pb2.AuthenticateRequest(username=plain.username, password=PASSWORD))
    bearer = (("authorization", f"Bearer {login.session_token}"),)
    new = building_pb2.CreateBuildingRequest(building=building_pb2.Building(name="x", address="y"))
    await expect_error(strict_stubs.buildings.CreateBuilding(new), grpc.StatusCode.UNAUTHENTICATED)
    await expect_error(strict_stubs.buildings.CreateBuilding(new, metadata=(("authorization", "Bearer nope"),)),
                       grpc.StatusCode.UNAUTHENTICATED)
    await expect_error(strict_stubs.buildings.CreateBuilding(new, metadata=bearer), grpc.StatusCode.PERMISSION_DENIED)
    await expect_error(_register(strict_stubs, role=user_pb2.ROLE_ADMIN, metadata=bearer),
                       grpc.StatusCode.PERMISSION_DENIED)
    await expect_error(strict_stubs.users.ListUsers(user_pb2.ListUsersRequest(), metadata=bearer),
                       grpc.StatusCode.PERMISSION_DENIED)
    mine = await strict_stubs.users.GetUser(user_pb2.GetUserRequest(user_id=plain.user_id), metadata=bearer)
    assert mine.user.user_id == plain.user_id
    await expect_error(strict_stubs.users.GetUser(user_pb2.GetUserRequest(user_id=plain.user_id + 10**6),
                                                  metadata=bearer), grpc.StatusCode.PERMISSION_DENIED)
    # Promotion revokes the old session so the new role applies at once; a new login is admin.
    await stubs.users.SetUserRole(user_pb2.SetUserRoleRequest(user_id=plain.user_id, role=user_pb2.ROLE_ADMIN))
    await expect_error(session_pb2_grpc.SessionServiceStub(channel).ValidateSession(
        session_pb2.ValidateSessionRequest(token=login.session_token)), grpc.StatusCode.UNAUTHENTICATED)
    again = await stubs.users.Authenticate(user_pb2.AuthenticateRequest(username=plain.username, password=PASSWORD))
    admin = (("authorization", f"Bearer {again.session_token}"),)
    created = await strict_stubs.buildings.CreateBuilding(new, metadata=admin)
    assert created.building.building_id > 0

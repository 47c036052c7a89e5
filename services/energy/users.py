"""Registration, login (argon2id, timing-safe) and roles."""

from __future__ import annotations

import re

import grpc

from services.runtime import NotFound, PermissionDenied, Unauthenticated, pagination

from .models import Page, User
from .passwords import Passwords
from .session_client import NewSession, SessionClient
from .store.users import UserStore
from .validation import Violations

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,50}$")
ROLES = ("user", "admin")
# A login's session role: energy scopes only (protos/banhammer/common/v1/access.proto), so no
# energy account, whoever created it, ever holds a BanHammer role such as "service" or "admin".
SESSION_ROLES = {"user": "energy_user", "admin": "energy_admin"}


def subject(user_id: int) -> str:
    return f"user:{user_id}"


class Users:
    def __init__(self, store: UserStore, passwords: Passwords, sessions: SessionClient, session_ttl: float) -> None:
        self.store = store
        self.passwords = passwords
        self.sessions = sessions
        self.session_ttl = session_ttl

    async def register(self, username: str, email: str, password: str, role: str, caller_is_admin: bool) -> User:
        v = Violations()
        if not _USERNAME.match(username):
            v.add("username", "must be 3..50 characters of [A-Za-z0-9_.-]")
        v.text("email", email, 3, 100)
        if email.count("@") != 1:
            v.add("email", "must contain exactly one @")
        v.text("password", password, 12, 256)
        v.raise_if_any()
        if role == "admin" and not caller_is_admin:
            raise PermissionDenied("only an admin can register an admin")
        password_hash = await self.passwords.hash(password)
        return await self.store.insert(username, email, password_hash, role)

    async def authenticate(self, username: str, password: str) -> tuple[User, NewSession]:
        v = Violations()
        v.text("username", username, 1, 50, unit="characters")
        v.text("password", password, 1, 256)
        v.raise_if_any()
        found = await self.store.credentials(username)
        # Unknown users still pay for one argon2 verification (against a dummy hash).
        ok, rehash = await self.passwords.verify(found[1] if found else None, password)
        if not ok or found is None:
            raise Unauthenticated("invalid username or password")
        user = found[0]
        if rehash:
            await self.store.set_hash(user.user_id, await self.passwords.hash(password))
        try:
            session = await self.sessions.create_session(subject(user.user_id), SESSION_ROLES[user.role],
                                                          user.username, self.session_ttl)
        except grpc.aio.AioRpcError:  # FAILED_PRECONDITION: the subject is banned
            raise PermissionDenied("this account may not log in") from None
        return user, session

    async def get(self, user_id: int) -> User:
        v = Violations()
        v.positive_id("user_id", user_id)
        v.raise_if_any()
        user = await self.store.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def list(self, role: str | None, page_size: int, page_token: str) -> Page:
        v = Violations()
        size = v.page_size("page_size", page_size, 50, 500)
        v.raise_if_any()
        filters = {"role": role}
        cursor = pagination.decode(page_token, "energy.ListUsers", filters)
        after = pagination.integer(cursor.get("id")) if cursor else 0
        rows = await self.store.list(role, after, size + 1)
        page = Page(rows[:size])
        if len(rows) > size:
            page.next_token = pagination.encode("energy.ListUsers", filters, {"id": rows[size - 1].user_id})
        return page

    async def set_role(self, user_id: int, role: str) -> User:
        v = Violations()
        v.positive_id("user_id", user_id)
        v.raise_if_any()
        user = await self.store.set_role(user_id, role)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        if self.sessions.configured:
            await self.sessions.revoke_subject(subject(user_id), "role changed")
        return user

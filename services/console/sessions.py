"""Sign-in, the session cookie, cross-site protection, and who a caller is.

The browser holds its session token only in an HttpOnly, SameSite=Strict cookie scoped to
/console/ (no script can read it); every state-changing request must also echo the readable
``bh_csrf`` cookie in an ``x-csrf-token`` header (double submit) and come from the console's own
origin. Who a token belongs to (role, subject) comes from the session service through the gateway
(RefreshSession with the token itself), cached for a few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .gateway import CallError, Gateway

SESSION_COOKIE = "bh_console"
CSRF_COOKIE = "bh_csrf"
CSRF_HEADER = "x-csrf-token"
PATH = "/console/"
_REFRESH = "/banhammer.session.v1.SessionService/RefreshSession"
_AUTHENTICATE = "/banhammer.energy.v1.UserService/Authenticate"
_REVOKE = "/banhammer.session.v1.SessionService/RevokeSession"


@dataclass(frozen=True)
class Caller:
    token: str
    role: str
    subject: str


class Unauthorized(Exception):
    pass


class Sessions:
    def __init__(self, gateway: Gateway, *, service_token_file: str, service_token: str, cache_seconds: float,
                 secure: bool) -> None:
        self.gateway = gateway
        self.service_token_file = service_token_file
        self.service_token = service_token
        self.cache_seconds = cache_seconds
        self.secure = secure
        self._known: dict[str, tuple[float, Caller]] = {}  # sha256(token) -> (expires, caller)

    def _service_token(self) -> str:
        # Read when needed: a rotated token file is picked up without a restart.
        return Path(self.service_token_file).read_text().strip() if self.service_token_file else self.service_token

    async def identify(self, token: str) -> Caller:
        """The caller a token belongs to; Unauthorized when it is not a live session."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._known.get(key)
        if hit and hit[0] > now:
            return hit[1]
        try:
            answer = await self.gateway.call(_REFRESH, {"token": token}, token)
        except CallError as err:
            self._known.pop(key, None)
            raise Unauthorized(err.message) from None
        session = answer.get("session", {})
        caller = Caller(token, session.get("role", ""), session.get("subject", ""))
        if len(self._known) > 10_000:  # bounded: forget everything rather than grow
            self._known.clear()
        self._known[key] = (now + self.cache_seconds, caller)
        return caller

    async def sign_in(self, body: dict) -> Caller:
        """A game admin's session token, or an energy user's username and password."""
        if body.get("token"):
            return await self.identify(str(body["token"]))
        answer = await self.gateway.call(_AUTHENTICATE, {"username": str(body.get("username", "")),
                                                         "password": str(body.get("password", ""))},
                                         self._service_token())
        return await self.identify(answer["session_token"])

    async def sign_out(self, caller: Caller) -> None:
        self._known.pop(hashlib.sha256(caller.token.encode()).hexdigest(), None)
        try:  # ending one's own session lowers privileges, so the console's credential may do it
            await self.gateway.call(_REVOKE, {"token": caller.token, "reason": "console sign-out"},
                                    self._service_token() or caller.token)
        except CallError:
            pass  # the cookie goes anyway; the session then lives until it expires

    def set_cookies(self, response: web.Response, caller: Caller) -> None:
        response.set_cookie(SESSION_COOKIE, caller.token, path=PATH, httponly=True, samesite="Strict",
                            secure=self.secure)
        response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), path=PATH, samesite="Strict",
                            secure=self.secure)

    @staticmethod
    def clear_cookies(response: web.Response) -> None:
        response.del_cookie(SESSION_COOKIE, path=PATH)
        response.del_cookie(CSRF_COOKIE, path=PATH)

    async def caller(self, request: web.Request) -> Caller:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise Unauthorized("not signed in")
        return await self.identify(token)


def same_site(request: web.Request) -> bool:
    """A state-changing request from the console's own page: CSRF header matches, origin matches."""
    cookie, header = request.cookies.get(CSRF_COOKIE, ""), request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie, header):
        return False
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"

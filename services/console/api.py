"""The console's JSON API: sign-in, who am I, and the RPCs its pages use, called as the caller.

``POST /console/api/rpc/<package.Service>/<Method>`` with the request as JSON answers the response
as JSON. Only the RPCs below are offered, and each only to the roles the contracts grant it
(``services/runtime/access.py``, the gateway's own table), so the console never lets a caller do
more than a direct call through the gateway would; the gateway then judges the call again.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web
from google.protobuf import json_format

from services.runtime import access

from .gateway import CallError, Gateway
from .sessions import Sessions, Unauthorized, same_site

log = logging.getLogger("banhammer.console")

_Q, _S, _I, _E = "banhammer.query.v1", "banhammer.session.v1", "banhammer.ingest.v1", "banhammer.energy.v1"
OFFERED = frozenset(
    [f"/{_Q}.QueryService/{m}" for m in ("GetStatsOverview", "GetTopPlayers", "GetHourlyLoad", "GetPlayer",
                                          "ListPlayerActions", "ListViolations", "GetStorageStats")]
    + [f"/{_S}.BanService/{m}" for m in ("Ban", "Unban", "IsBanned", "ListBans", "GetBanHistory")]
    + [f"/{_I}.IngestService/{m}" for m in ("ListRules", "GetRule")]
    + [f"/{_I}.RuleService/{m}" for m in ("CreateRule", "UpdateRule", "DryRunRule", "ListRuleChanges")]
    + [f"/{_E}.BuildingService/{m}" for m in ("ListBuildings", "GetBuilding", "ListTenants")]
    + [f"/{_E}.DashboardService/{m}" for m in ("GetDashboard", "ListBuildingSummaries")]
    + [f"/{_E}.SensorService/QueryReadings", f"/{_E}.ForecastService/GetForecast"]
    + [f"/{_E}.EnergyUsageService/{m}" for m in ("GetDailyUsage", "GetMonthlyUsage")]
    + [f"/{_E}.AlertService/{m}" for m in ("ListAlerts", "AcknowledgeAlert", "ListAlertRules")]
)
EXPORT = f"/{_E}.SensorService/ExportReadingsCsv"
MAX_BODY = 256 * 1024


def _error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def allowed(role: str) -> list[str]:
    policy = access.load()
    return sorted(p for p in OFFERED | {EXPORT} if policy.allows(role, policy.methods[p]))


class Api:
    def __init__(self, gateway: Gateway, sessions: Sessions) -> None:
        self.gateway = gateway
        self.sessions = sessions

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/console/api/login", self.login),
            web.post("/console/api/logout", self.logout),
            web.get("/console/api/me", self.me),
            web.post("/console/api/rpc/{service}/{method}", self.rpc),
            web.get("/console/api/export.csv", self.export_csv),
        ]

    async def _body(self, request: web.Request) -> dict:
        if request.content_length and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body

    async def login(self, request: web.Request) -> web.Response:
        # No CSRF cookie exists yet: the origin check alone keeps other sites from signing a browser in.
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return _error(403, "cross-site request refused")
        try:
            caller = await self.sessions.sign_in(await self._body(request))
        except (CallError, Unauthorized, KeyError):
            return _error(401, "sign-in failed: check the token, or the username and password")
        response = web.json_response({"role": caller.role, "subject": caller.subject, "allowed": allowed(caller.role)})
        self.sessions.set_cookies(response, caller)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        if not same_site(request):
            return _error(403, "cross-site request refused")
        response = web.json_response({})
        try:
            await self.sessions.sign_out(await self.sessions.caller(request))
        except Unauthorized:
            pass
        self.sessions.clear_cookies(response)
        return response

    async def me(self, request: web.Request) -> web.Response:
        try:
            caller = await self.sessions.caller(request)
        except Unauthorized:
            return _error(401, "not signed in")
        return web.json_response({"role": caller.role, "subject": caller.subject, "allowed": allowed(caller.role)})

    async def rpc(self, request: web.Request) -> web.Response:
        if not same_site(request):
            return _error(403, "cross-site request refused")
        path = f"/{request.match_info['service']}/{request.match_info['method']}"
        if path not in OFFERED:
            return _error(404, f"the console offers no RPC {path}")
        try:
            caller = await self.sessions.caller(request)
        except Unauthorized:
            return _error(401, "not signed in")
        if path not in allowed(caller.role):
            return _error(403, f"role {caller.role!r} may not call {path}")
        try:
            return web.json_response(await self.gateway.call(path, await self._body(request), caller.token))
        except json_format.ParseError as exc:
            return _error(400, str(exc)[:512])
        except CallError as err:
            return _error(err.http_status, err.message, code=err.code.name, details=err.details)

    async def export_csv(self, request: web.Request) -> web.StreamResponse:
        """Readings of one building as a CSV download (the cookie is SameSite=Strict: no cross-site GET)."""
        try:
            caller = await self.sessions.caller(request)
        except Unauthorized:
            return _error(401, "not signed in")
        if EXPORT not in allowed(caller.role):
            return _error(403, f"role {caller.role!r} may not export readings")
        q = request.query
        if not q.get("building_id", "").isdigit():
            return _error(400, "building_id must be a building's id")
        body = {"time_range": {"start_time": q.get("start", ""), **({"end_time": q["end"]} if q.get("end") else {})},
                "filter": {"building_ids": [q.get("building_id", "")]}}
        chunks = self.gateway.stream(EXPORT, body, caller.token)
        try:  # the first chunk decides the status: an error before any byte is an error page, not a file
            first = await anext(chunks, None)
        except json_format.ParseError as exc:
            return _error(400, str(exc)[:512])
        except CallError as err:
            return _error(err.http_status, err.message, code=err.code.name, details=err.details)
        response = web.StreamResponse(headers={
            "content-type": "text/csv; charset=utf-8",
            "content-disposition": f'attachment; filename="readings-{q.get("building_id", "")}.csv"'})
        await response.prepare(request)
        if first is not None:
            await response.write(first.chunk)
        async for chunk in chunks:
            await response.write(chunk.chunk)
        await response.write_eof()
        return response

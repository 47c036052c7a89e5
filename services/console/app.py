"""The console's web app: the single-page UI's files and its JSON API, under /console/."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from opentelemetry import propagate, trace

from .api import Api
from .config import ConsoleConfig
from .gateway import Gateway
from .sessions import Sessions

REPO = Path(__file__).resolve().parents[2]
# Scripts only from the console itself (no inline script, no CDN); charts draw on canvas.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@web.middleware
async def _edge(request: web.Request, handler) -> web.StreamResponse:
    # One span per request, continuing the gateway's trace; the gRPC calls it makes are its children.
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else request.path
    with trace.get_tracer("banhammer.console").start_as_current_span(
            f"{request.method} {route}", context=propagate.extract(request.headers), kind=trace.SpanKind.SERVER):
        response = await handler(request)
    response.headers.setdefault("content-security-policy", _CSP)
    response.headers.setdefault("x-content-type-options", "nosniff")
    response.headers.setdefault("referrer-policy", "same-origin")
    if request.path.startswith("/console/api/"):
        response.headers.setdefault("cache-control", "no-store")
    return response


def build_app(conf: ConsoleConfig) -> web.Application:
    static = Path(conf.static_dir) if conf.static_dir else REPO / "build" / "console"
    if not (static / "index.html").is_file():
        raise FileNotFoundError(f"{static / 'index.html'} missing: build the console with `make install`")
    gateway = Gateway(conf.gateway_addr, conf.call_timeout_seconds)
    sessions = Sessions(gateway, service_token_file=conf.service_token_file, service_token=conf.service_token,
                        cache_seconds=conf.identity_cache_seconds, secure=conf.secure_cookies)
    app = web.Application(middlewares=[_edge], client_max_size=512 * 1024)
    app.add_routes(Api(gateway, sessions).routes())

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(static / "index.html")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def to_console(request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    app.add_routes([web.get("/console/", index), web.get("/console", to_console), web.get("/healthz", healthz),
                    web.static("/console/assets", static / "assets")])

    async def close_gateway(app: web.Application) -> None:
        await gateway.close()

    app.on_cleanup.append(close_gateway)
    return app

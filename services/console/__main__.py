"""``python -m services.console``: serve the console until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from services.runtime import cli
from services.runtime.config import load
from services.runtime.logs import setup_logging
from services.runtime.telemetry import setup_telemetry, shutdown_telemetry

from .app import build_app
from .config import ConsoleConfig

log = logging.getLogger("banhammer.console")


async def serve(conf: ConsoleConfig) -> None:
    provider = setup_telemetry("console", otlp_endpoint=conf.otlp_endpoint)  # before the gateway channel
    runner = web.AppRunner(build_app(conf), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, conf.host, conf.port)
    await site.start()
    log.info("console serving", extra={"addr": f"{conf.host}:{conf.port}", "gateway": conf.gateway_addr})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()  # finishes in-flight requests, closes the gateway channel
    shutdown_telemetry(provider)


def main() -> int:
    cli.CommandParser(prog="python -m services.console", description=__doc__.split(":")[1].strip()).parse_args()
    conf = load(ConsoleConfig)
    setup_logging("console", conf.log_level)
    asyncio.run(serve(conf))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python -m services.console"))

"""The console in a real browser: Debian's chromium driven by Playwright, against the suite behind a
real Envoy with authentication on, the console process routed at /console/ by that Envoy.

Playwright never downloads a browser here (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1): it drives
/usr/bin/chromium (`.ci/run` installs it). Without chromium the tests skip, and fail under CI.
Screenshots of every page go to build/console-screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness import free_port
from tests.harness.paths import TARGETS
from tests.harness.processes import ManagedProcess, wait_until
from tests.harness.require import missing

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SHOTS = REPO / "build" / "console-screenshots"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.fixture(scope="session")
def console_gateway(suite, envoy_factory, gateway_tokens, tmp_path_factory):
    """Envoy (auth on) in front of the suite and of a console process; yields the gateway."""
    if not (REPO / "build" / "console" / "index.html").exists():
        missing("build/console missing: run `make install` (scripts/build_console.sh)")
    port = free_port()
    gw = envoy_factory({t: suite.addr for t in TARGETS}, console=f"127.0.0.1:{port}")
    workdir = tmp_path_factory.mktemp("console")
    token_file = workdir / "service.token"
    token_file.write_text(gateway_tokens["service"])
    env = {**os.environ, "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(port), "CONSOLE_GATEWAY_ADDR": gw.addr,
           "CONSOLE_SERVICE_TOKEN_FILE": str(token_file), "PYTHONPATH": f"{REPO / 'gen'}:{REPO}"}
    proc = ManagedProcess("console", [sys.executable, "-m", "services.console"], workdir / "console.log",
                          env=env, cwd=REPO).start()
    try:
        wait_until(lambda: _get(f"{gw.url}/console/") == 200, 30, "the console through Envoy", proc)
        yield gw
    finally:
        proc.stop()


# Module scope: Playwright's sync API runs an event loop in this thread while it is open, which
# async tests of other modules in the same run could not start beside.
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} missing: apt-get install chromium")
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is missing: make install")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

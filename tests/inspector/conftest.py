"""Fixtures: a real server (uvicorn on loopback) over two test engines, and a real chromium.

The browser is Debian's chromium driven by Playwright for Python. Without
either, the browser tests skip with the reason; with ``ADK_REQUIRE_SERVICES``
set (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adk.service import Service
from tests.inspector import apps
from tests.service.server import LiveServer
from tests.support.engine_server import start_engines

KEYS = {"key-alpha-0001": "alpha", "key-beta-00002": "beta"}
CHROMIUM = os.environ.get("ADK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _missing() -> str | None:
    """Why a browser test cannot run here (None: it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.fixture(autouse=True)
def _reset_apps() -> Iterator[None]:
    apps.RELEASE.clear()
    apps.REFUNDS.clear()
    yield
    apps.RELEASE.set()  # a held tool never outlives its test


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with two workspaces' keys; ``support`` is served by two test engines."""
    import litellm  # noqa: F401  (seconds to import: before any page waits on a model call)

    with start_engines(2, handler=apps.engine_script) as engines:
        db = tmp_path_factory.mktemp("inspector") / "service.db"
        options = {"serving": apps.layer([e.url for e in engines]), "streaming": True}
        service = Service(
            apps.agents(), store=f"sqlite:///{db}", api_keys=KEYS, runner_options=options
        )
        server = LiveServer(service)
        try:
            yield server
        finally:
            apps.RELEASE.set()
            server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium (skipped, or failed under ADK_REQUIRE_SERVICES, when missing).

    Module-scoped, never longer: Playwright's sync API marks an asyncio loop as
    running in this thread for as long as it is open, and every anyio test
    after it would fail with "Cannot run the event loop while another loop is
    running" (tests/inspector/test_isolation_after_browser.py checks).
    """
    reason = _missing()
    if reason is not None:
        if os.environ.get("ADK_REQUIRE_SERVICES"):
            pytest.fail(f"the browser tests need a browser: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own sessionStorage), 1200 px wide for readable screenshots."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()

"""Browser tests of the web console: Playwright driving Debian's chromium
(``apt-get install chromium``; never ``playwright install``). Skipped, saying why, when
chromium or Playwright is missing; a failure when the environment variable CI is set.
Screenshots go to ``test-artifacts/console/`` (CI keeps that folder)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.controlplane.conftest import serve_api
from tests.ui.conftest import Console, bc_bundles, console

__all__ = ["bc_bundles", "console"]  # fixtures shared with tests/ui

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def _missing() -> str | None:
    if CHROMIUM is None:
        return "Debian's chromium is not installed (scripts/ci-browser.sh installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests, saying why, when chromium or Playwright is missing; under CI
    they run anyway and fail (the launch fixture names what to install)."""
    why = _missing()
    if why is None or os.environ.get("CI"):
        return
    for item in items:
        if Path(__file__).parent in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, driven by Playwright for the tests of one module.

    Not pytest-playwright's session-wide fixtures: Playwright's sync API keeps an event loop
    running in the main thread while it lives, and every later test that runs a loop of its
    own (``asyncio.run``: the in-process fuzzers, the gRPC tests) then failed with "Cannot
    run the event loop while another loop is running". Stopped when the module ends.
    """
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium: run scripts/ci-browser.sh")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies from another test) and its page."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@dataclass
class Live:
    """The console served on 127.0.0.1 with the controllers running."""

    url: str
    console: Console


@pytest.fixture
def live(console: Console) -> Iterator[Live]:
    stop = threading.Event()
    loop = threading.Thread(target=console.service.run, args=(stop, 0.05), daemon=True)
    loop.start()
    try:
        with serve_api(console.app) as url:
            yield Live(url, console)
    finally:
        stop.set()
        loop.join(15)


def shot(page: Any, name: str) -> None:
    """A full-page screenshot for people to look at (never compared pixel by pixel)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def serious_violations(page: Any) -> list[str]:
    """axe-core (vendored) run in the page: the serious and critical violations."""
    # Evaluated through the DevTools protocol: the console's CSP (script-src 'self') rightly
    # refuses an injected <script> element, and the test must not weaken it.
    page.evaluate(AXE.read_text())
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]

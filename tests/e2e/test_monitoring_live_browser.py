"""The Monitoring screen follows a real monitor run in headless chromium: the pipeline-trained
taxi model's requests are logged by the model server's own writer, the control plane's monitor
loop closes a window, and the open page shows it through its SSE stream without a reload,
keeping the deep link's feature selected."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tests.controlplane.conftest import serve_api
from tests.controlplane.test_monitors import monitor_doc, monitored_control_plane
from tests.e2e.conftest import serious_violations, shot
from tests.monitor.conftest import Traffic, Trained, taxi_frame, trained
from tests.ui.conftest import TOKEN

from loopline.controlplane.api import create_app
from loopline.controlplane.service import ControlPlane
from loopline.testing.artifacts import wait_for
from loopline.ui import create_console

__all__ = ["taxi_frame", "trained"]  # the session fixtures of tests/monitor

# The console re-reads a page's live part every 0.25 s (the 1 s budget); the bound here is 3 s,
# as the deployment page's live test, so that a loaded CI machine does not flake.
LIVE_DEADLINE_MS = 3000


@dataclass
class Watched:
    url: str
    service: ControlPlane
    traffic: Traffic

    def windows(self, name: str) -> int:
        return self.service.monitors().status(name).windows


@pytest.fixture
def watched(trained: Trained, tmp_path: Path) -> Iterator[Watched]:
    """The control plane (fake engine) with its monitor loop ticking every 0.1 s and the
    console mounted, serving ``taxi/1`` with prediction logging on."""
    logs = tmp_path / "predictions"
    service = monitored_control_plane(trained, logs)
    store = service.monitors().store
    console = create_console(service, token=TOKEN, log_directory=logs)
    app = create_app(service, token=TOKEN, console=console)
    stop = threading.Event()
    loop = threading.Thread(target=service.run, args=(stop, 0.1), daemon=True)
    loop.start()
    try:
        with serve_api(app) as url:
            service.apply({
                "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
                "spec": {"model": "taxi/1", "replicas": 1,
                         "template": {"logging": {"enabled": True}}},
            })  # fmt: skip
            yield Watched(url, service, Traffic(logs, trained.model))
    finally:
        stop.set()
        loop.join(30)
        for m in store.list():  # the session's metadata database outlives this test
            store.delete(m.spec.name)


def test_a_window_closed_by_the_monitor_loop_appears_on_the_open_page_without_a_reload(
    page: Page, watched: Watched, trained: Trained
) -> None:
    watched.service.monitors().apply(monitor_doc("live-taxi"))
    with page.expect_response(lambda r: "/ui/live/monitors/live-taxi" in r.url):  # stream open
        page.goto(f"{watched.url}/ui/monitors/live-taxi?feature=distance")
    expect(page.locator("#live")).to_contain_text("No window has closed yet")

    rows = trained.data.sample(600, random_state=5)
    watched.traffic.send(rows.iloc[:300], labels=True)
    wait_for(lambda: watched.windows("live-taxi") == 1, timeout=120,
             what="the monitor loop to close window 0")  # fmt: skip
    heat = page.locator("#heat thead th a")
    expect(heat).to_have_text(["0"], timeout=LIVE_DEADLINE_MS)
    expect(page.locator("#dist-h")).to_have_text("distance: window 0 vs reference")
    expect(page.locator('#heat tr[data-feature="distance"] td[data-window="0"]')).to_have_count(1)
    expect(page.locator('#performance tr[data-window="0"]').first).to_be_visible()

    # A keyboard user on the feature link: the live update keeps the focus there (its href
    # moves on to the new window; live-focus.js finds it again by its row).
    page.locator('#heat tr[data-feature="hour"] th a').focus()
    watched.traffic.send(rows.iloc[300:], labels=True, ts=1.7e9 + 3600)
    wait_for(lambda: watched.windows("live-taxi") == 2, timeout=120,
             what="the monitor loop to close window 1")  # fmt: skip
    expect(heat).to_have_text(["0", "1"], timeout=LIVE_DEADLINE_MS)
    # The deep link's feature stays selected; the newest window is shown.
    expect(page.locator("#dist-h")).to_have_text("distance: window 1 vs reference")
    # The swapped-in charts are drawn again (charts.js runs on every htmx swap).
    expect(page.locator('#drift-chart[data-drawn="true"] .uplot canvas')).to_have_count(1)
    assert "feature=distance" in page.url
    focused = page.evaluate("document.activeElement.closest('tr')?.dataset.feature")
    assert focused == "hour"
    shot(page, "monitor-live")
    assert serious_violations(page) == []

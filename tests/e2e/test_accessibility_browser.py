"""Every console screen in headless chromium, in the light and the dark colour scheme: axe-core
(vendored, injected through the DevTools protocol) finds no serious or critical violation, and
a full-page screenshot of each is kept under ``test-artifacts/console/a11y/`` for people to
look at."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from tests.e2e.conftest import ARTIFACTS, Live, serious_violations
from tests.ui.conftest import deployment, tiny_pipeline
from tests.ui.test_monitoring import attach_monitor

from loopline.testing.artifacts import wait_for


def log_request(live: Live, request_id: str) -> None:
    """A prediction of ``bc`` version 1 logged where the console's monitors read."""
    import numpy as np

    from loopline.serving import LogOptions
    from loopline.serving.prediction_log import LogRecord, SegmentWriter

    logs = live.console.runner.log_dir  # attach_monitor's log_root
    writer = SegmentWriter(logs, "predictions", LogOptions(logs))
    writer.offer(LogRecord(request_id, 1_800_000_000.0, "bc", "1", 2,
                           {"inputs": {"x": np.array([3.0, 4.0])},
                            "outputs": {"predict": np.array([1, 0])}}))  # fmt: skip
    writer.flush()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_screen_passes_axe_in_both_colour_schemes(
    page: Page, live: Live, scheme: str
) -> None:
    s = live.console.service
    s.apply(deployment(canary=False))
    wait_for(lambda: s.get_deployment("bc")["status"]["phase"] == "Healthy", timeout=20,
             what="bc to roll out bc/1")  # fmt: skip
    live.console.runner.run(tiny_pipeline())
    attach_monitor(live.console)
    log_request(live, "req-a11y")
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{live.url}/ui/runs")
    run_id = re.sub(r"\D", "", page.locator("#runs tbody tr").first.get_attribute("data-run") or "")
    artifact = live.console.metadata.get_model_version("bc", 1).artifact_id
    screens = [
        ("overview", "/ui/", "#dep-bc"),
        ("deployment", "/ui/deployments/bc", "#phase"),
        ("registry", "/ui/models", "#models"),
        ("model", "/ui/models/bc", "#versions"),
        ("runs", "/ui/runs", "#runs"),
        ("run", f"/ui/runs/{run_id}", "svg#dag"),
        ("monitors", "/ui/monitors", "#monitors"),
        ("monitoring", "/ui/monitors/bc-watch?feature=distance", '#drift-chart[data-drawn="true"]'),
        ("lineage-run", f"/ui/lineage?from=run/{run_id}", "svg#lineage"),
        ("lineage-model", f"/ui/lineage?from=artifact/{artifact}", "#registry"),
        ("lineage-prediction", "/ui/lineage?from=prediction/req-a11y", "#request-rows"),
        ("sign-in", "/ui/login", "form.login"),
    ]
    folder = ARTIFACTS / "a11y"
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    for name, path, ready in screens:
        page.goto(f"{live.url}{path}")
        expect(page.locator(ready)).to_be_visible()
        page.screenshot(path=str(folder / f"{name}-{scheme}.png"), full_page=True)
        violations = serious_violations(page)
        if violations:
            found[path] = violations
    assert found == {}

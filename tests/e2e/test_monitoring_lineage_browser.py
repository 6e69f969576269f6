"""The Monitoring and Lineage screens in headless chromium: each renders its SVG, passes
axe-core (no serious or critical violation) and leaves a screenshot."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from tests.e2e.conftest import Live, serious_violations, shot
from tests.ui.conftest import tiny_pipeline
from tests.ui.test_monitoring import attach_monitor


def test_the_monitoring_screen_renders_its_heat_table_and_charts_and_passes_axe(
    page: Page, live: Live
) -> None:
    attach_monitor(live.console)
    errors: list[str] = []  # script errors and failed loads (charts.js, live-focus.js, uPlot)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live.url}/ui/monitors")
    expect(page.locator("#monitors")).to_contain_text("bc-watch")
    assert serious_violations(page) == []
    page.get_by_role("link", name="bc-watch").click()
    expect(page.locator('#heat td[data-drifted="true"]')).to_have_count(2)
    expect(page.locator("td.spark svg")).to_have_count(2)
    expect(page.locator("#distribution svg rect.cur")).to_have_count(2)
    # uPlot (vendored) drew the drift score over windows and the performance chart.
    expect(page.locator('#drift-chart[data-drawn="true"] .uplot canvas')).to_have_count(1)
    expect(page.locator('#perf-chart-0[data-drawn="true"] .uplot canvas')).to_have_count(1)
    page.get_by_role("link", name="hour").click()
    expect(page.locator("#dist-h")).to_contain_text("hour: window 2")
    expect(page.locator("#trend-h")).to_have_text("hour: drift score per window")
    expect(page.locator('#drift-chart[data-drawn="true"] .uplot canvas')).to_have_count(1)
    shot(page, "monitor")
    assert serious_violations(page) == []
    assert errors == []


def test_the_lineage_screen_draws_a_runs_graph_and_passes_axe(page: Page, live: Live) -> None:
    live.console.runner.run(tiny_pipeline())
    page.goto(f"{live.url}/ui/runs")
    page.locator("#runs a").first.click()
    page.get_by_role("link", name="Lineage of this run").click()
    expect(page.locator('svg#lineage g[data-kind="execution"]')).to_have_count(3)
    expect(page.locator('svg#lineage g[data-kind="artifact"]')).to_have_count(3)
    shot(page, "lineage")
    assert serious_violations(page) == []
    page.locator('svg#lineage g[data-kind="artifact"]').first.click()
    expect(page.locator("h1")).to_contain_text("Lineage · Artifact")


def test_a_model_versions_lineage_shows_its_registry_references_and_passes_axe(
    page: Page, live: Live
) -> None:
    from tests.ui.conftest import deployment

    from loopline.testing.artifacts import wait_for

    s = live.console.service
    s.apply(deployment(canary=False))  # bc@champion: version 1
    wait_for(lambda: s.get_deployment("bc")["status"]["phase"] == "Healthy", timeout=20,
             what="bc to roll out bc/1")  # fmt: skip
    page.goto(f"{live.url}/ui/models/bc")
    page.get_by_role("link", name="lineage").last.click()  # versions are newest first
    expect(page.locator("h1")).to_contain_text("Lineage · Model bc version 1")
    registry = page.locator("#registry")
    expect(registry).to_contain_text("@champion")
    expect(registry.locator('a[href="/ui/deployments/bc"]')).to_be_visible()
    shot(page, "lineage-model")
    assert serious_violations(page) == []

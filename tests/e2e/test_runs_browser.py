"""The Runs screens in Chromium: tick two runs, compare them, keep "only differences" across
a reload, open a step's log and why it ran; axe-core on the compare and run pages."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Live, serious_violations, shot
from tests.ui.test_runs import param_pipeline

TIMEOUT_MS = 10_000


def test_compare_two_ticked_runs_and_keep_the_view_in_the_url(live: Live, page: Any) -> None:
    from playwright.sync_api import expect

    runner = live.console.runner
    a = runner.run(param_pipeline(), params={"rows": 3}).run_id
    b = runner.run(param_pipeline(), params={"rows": 4}).run_id
    page.goto(f"{live.url}/ui/runs")
    page.check(f"#pick-{a}")
    page.check(f"#pick-{b}")
    page.click("#compare")
    expect(page).to_have_url(f"{live.url}/ui/compare?runs={b}&runs={a}", timeout=TIMEOUT_MS)
    params = page.locator('#compare-params tr[data-differs="true"]')
    expect(params).to_have_count(1)
    expect(params.first).to_contain_text("rows")
    expect(page.locator("#step-ingest")).to_contain_text("parameter 'rows' changed: 4 → 3")
    page.click("#only-diff")
    expect(page).to_have_url(f"{live.url}/ui/compare?runs={b},{a}&only=diff")
    expect(page.locator('tr[data-differs="false"]')).to_have_count(0)
    page.reload()
    expect(page.locator("#show-all")).to_be_visible()
    expect(page.locator('tr[data-differs="false"]')).to_have_count(0)
    assert serious_violations(page) == []
    shot(page, "compare")


def test_a_steps_log_and_why_open_from_the_run_page(live: Live, page: Any) -> None:
    from playwright.sync_api import expect

    runner = live.console.runner
    runner.run(param_pipeline(), params={"rows": 3})
    b = runner.run(param_pipeline(), params={"rows": 4}).run_id
    page.goto(f"{live.url}/ui/runs/{b}")
    page.click('#run-steps a:text-is("ingest")')
    expect(page).to_have_url(f"{live.url}/ui/runs/{b}?step=ingest#step-panel")
    expect(page.locator("#why")).to_contain_text("parameter 'rows' changed: 3 → 4")
    expect(page.locator("#step-panel")).to_be_visible()
    assert serious_violations(page) == []
    shot(page, "run-step")

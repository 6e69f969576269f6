"""The console in headless chromium: each screen renders and passes axe-core, a deployment
page follows a real (fake-engine) rollout live, actions with and without the token."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect
from tests.e2e.conftest import Live, serious_violations, shot
from tests.ui.conftest import TOKEN, deployment, tiny_pipeline

from loopline.testing.artifacts import wait_for


def canary_paused(live: Live) -> None:
    """``bc`` serving bc/1 with a canary strategy, then set to bc/2: paused at step 2/4."""
    s = live.console.service
    s.apply(deployment())
    wait_for(lambda: s.get_deployment("bc")["status"]["phase"] == "Healthy", timeout=20,
             what="bc to roll out bc/1")  # fmt: skip
    s.set_model("bc", "bc/2")
    wait_for(lambda: (s.get_deployment("bc")["status"]["rollout"] or {}).get("pause"),
             timeout=20, what="the canary to reach its first pause")  # fmt: skip


def sign_in(page: Page, live: Live, next_path: str) -> None:
    page.goto(f"{live.url}/ui/login?next={next_path}")
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#read-only")).to_have_count(0)


def test_the_overview_shows_the_deployments_and_passes_axe(page: Page, live: Live) -> None:
    canary_paused(live)
    page.goto(f"{live.url}/ui/")
    row = page.locator("#dep-bc")
    expect(row).to_contain_text("bc/2")
    expect(row).to_contain_text("rev 2: 25%")
    shot(page, "overview")
    assert serious_violations(page) == []


def test_the_deployment_page_follows_a_promote_through_the_api_without_a_reload(
    page: Page, live: Live
) -> None:
    canary_paused(live)
    with page.expect_response(lambda r: "/ui/live/deployments/bc" in r.url):  # stream open
        page.goto(f"{live.url}/ui/deployments/bc")
    expect(page.locator("#step")).to_have_text("step 2/4 (pause)")
    r = httpx.post(f"{live.url}/v1/deployments/bc/rollout/promote", json={},
                   headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 200
    # The state change reaches the page by SSE, with no reload: the server re-reads every
    # 0.25 s (the 1 s budget); the bound here is 3 s so a loaded CI machine does not flake.
    expect(page.locator("#step")).to_have_text(re.compile(r"step 4/4"), timeout=3000)
    expect(page.locator("#weights")).to_contain_text("50%", timeout=3000)
    shot(page, "deployment-promoted")
    assert serious_violations(page) == []


def test_without_the_token_actions_are_disabled_and_a_forged_post_is_refused(
    page: Page, live: Live
) -> None:
    canary_paused(live)
    page.goto(f"{live.url}/ui/deployments/bc")
    promote = page.locator('button[data-verb="promote"]')
    expect(promote).to_be_disabled()
    status = page.evaluate("async (u) => (await fetch(u, {method: 'POST'})).status",
                           f"{live.url}/ui/deployments/bc/actions/promote")  # fmt: skip
    assert status == 401
    expect(page.locator("#step")).to_contain_text("step 2/4")


def test_with_the_token_promote_confirms_with_the_cli_command(page: Page, live: Live) -> None:
    canary_paused(live)
    sign_in(page, live, "/ui/deployments/bc")
    expect(page).to_have_url(f"{live.url}/ui/deployments/bc")
    page.locator('button[data-verb="promote"]').click()
    done = page.get_by_role("status")
    expect(done).to_contain_text("loopline rollout promote deployment/bc")
    expect(page.locator("#step")).to_contain_text("step 4/4", timeout=5000)
    shot(page, "deployment-action")


def test_registry_and_runs_screens_pass_axe(page: Page, live: Live) -> None:
    live.console.service.apply(deployment(canary=False))
    live.console.runner.run(tiny_pipeline())
    for path, name, check in (
        ("/ui/models", "models", "#models"),
        ("/ui/models/bc", "model", "#versions"),
        ("/ui/runs", "runs", "#runs"),
    ):
        page.goto(f"{live.url}{path}")
        expect(page.locator(check)).to_be_visible()
        shot(page, name)
        assert serious_violations(page) == [], path
    page.locator("#runs a").first.click()
    expect(page.locator("svg#dag g[data-status]")).to_have_count(3)
    # Measured in one script run: the live stream's first update swaps the graph in anew, and a
    # node looked up before that swap and measured after it is detached (no box).
    boxes = page.evaluate(
        """ids => ids.map(id => {
            const r = document.getElementById(`node-${id}`).getBoundingClientRect();
            return {x: r.x, y: r.y, width: r.width, height: r.height};
        })""",
        ["ingest", "stats", "train"],
    )
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a and b
            side = a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
            above = a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
            apart = side or above
            assert apart, (a, b)
    shot(page, "run")
    assert serious_violations(page) == []

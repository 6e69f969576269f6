"""The console's screens, fragments, live stream and actions over the real ControlPlane
(fake engine): who may read and act, what each screen shows, deep links and paging."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from tests.ui.conftest import TOKEN, Console, csrf_of, deployment, tiny_pipeline

import loopline.ui
from loopline.ui.session import COOKIE

VENDOR = Path(loopline.ui.__file__).parent / "static" / "vendor"


def canary_in_flight(console: Console) -> None:
    """Deployment ``bc`` serving bc/1, then set to bc/2: paused at the canary's first pause."""
    console.service.apply(deployment())
    console.settle()
    console.service.set_model("bc", "bc/2")
    console.settle()


def test_the_overview_shows_one_row_per_deployment_with_model_health_and_split(
    console: Console,
) -> None:
    canary_in_flight(console)
    page = console.client().get("/ui/")
    assert page.status_code == 200
    row = re.search(r'<tr id="dep-bc".*?</tr>', page.text, re.S)
    assert row is not None
    assert "bc/2" in row.group() and "Paused" in row.group() and "step 2/4" in row.group()
    assert "rev 1: 75%" in row.group() and "rev 2: 25%" in row.group()
    assert 'sse-connect="/ui/live/overview"' in page.text


def test_reads_from_another_address_need_a_session(console: Console) -> None:
    console.service.apply(deployment(canary=False))
    refused = console.client(remote=True).get("/ui/deployments/bc")
    assert refused.status_code == 401
    assert 'action="/ui/login"' in refused.text and 'value="/ui/deployments/bc"' in refused.text
    assert console.client(remote=True, signed_in=True).get("/ui/deployments/bc").status_code == 200


def test_signing_in_sets_an_httponly_strict_cookie_only_for_the_right_token(
    console: Console,
) -> None:
    c = console.client(remote=True)
    wrong = c.post("/ui/login", data={"token": "nope", "next": "/ui/runs"})
    assert wrong.status_code == 401 and "not the control plane" in wrong.text
    right = c.post("/ui/login", data={"token": TOKEN, "next": "/ui/runs"})
    assert right.status_code == 303 and right.headers["location"] == "/ui/runs"
    cookie = right.headers["set-cookie"].lower()
    assert cookie.startswith(COOKIE) and "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/ui/runs").status_code == 200
    offsite = c.post("/ui/login", data={"token": TOKEN, "next": "https://evil.example/"})
    assert offsite.headers["location"] == "/ui/"


def test_without_a_session_the_console_is_read_only(console: Console) -> None:
    canary_in_flight(console)
    page = console.client().get("/ui/deployments/bc")
    assert page.status_code == 200
    assert 'name="csrf-token"' not in page.text and "read-only" in page.text
    buttons = re.findall(r"<button[^>]*data-verb=[^>]*>", page.text)
    assert buttons and all("disabled" in b for b in buttons)


def test_an_action_without_a_session_is_401_and_changes_nothing(console: Console) -> None:
    canary_in_flight(console)
    r = console.client().post("/ui/deployments/bc/actions/promote")
    assert r.status_code == 401 and 'role="alert"' in r.text and "sign in" in r.text
    assert console.service.get_deployment("bc")["status"]["rollout"]["currentStepIndex"] == 1


def test_an_action_without_the_csrf_token_is_403(console: Console) -> None:
    canary_in_flight(console)
    c = console.client(signed_in=True)
    r = c.post("/ui/deployments/bc/actions/promote")
    assert r.status_code == 403 and "CSRF" in r.text
    forged = c.post("/ui/deployments/bc/actions/promote", headers={"X-CSRF-Token": "0" * 64})
    assert forged.status_code == 403
    assert console.service.get_deployment("bc")["status"]["rollout"]["currentStepIndex"] == 1


def test_promote_with_session_and_csrf_moves_the_rollout_and_shows_the_command(
    console: Console,
) -> None:
    canary_in_flight(console)
    c = console.client(signed_in=True)
    page = c.get("/ui/deployments/bc")
    enabled = re.search(r'<button[^>]*data-verb="promote"[^>]*>', page.text)
    assert enabled is not None and "disabled" not in enabled.group()
    r = c.post("/ui/deployments/bc/actions/promote", headers={"X-CSRF-Token": csrf_of(page.text)})
    assert r.status_code == 200 and 'role="status"' in r.text
    assert "loopline rollout promote deployment/bc" in r.text
    console.settle()
    assert console.service.get_deployment("bc")["status"]["rollout"]["currentStepIndex"] == 3


def test_scale_takes_the_csrf_form_field_and_an_invalid_count_is_400_naming_it(
    console: Console,
) -> None:
    console.service.apply(deployment(canary=False))
    c = console.client(signed_in=True)
    csrf = csrf_of(c.get("/ui/deployments/bc").text)
    bad = c.post("/ui/deployments/bc/actions/scale", data={"csrf": csrf, "replicas": "-1"})
    assert bad.status_code == 400 and "replicas = &#39;-1&#39; is invalid" in bad.text
    ok = c.post("/ui/deployments/bc/actions/scale", data={"csrf": csrf, "replicas": "3"})
    assert ok.status_code == 200 and "loopline scale deployment/bc --replicas 3" in ok.text
    assert console.service.get_deployment("bc")["spec"]["replicas"] == 3


def test_a_refused_operation_is_shown_with_its_status(console: Console) -> None:
    console.service.apply(deployment(canary=False))
    c = console.client(signed_in=True)
    csrf = csrf_of(c.get("/ui/deployments/bc").text)
    r = c.post("/ui/deployments/bc/actions/resume", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 409 and "already not paused" in r.text


def test_the_deployment_page_shows_steps_weights_revisions_replicas_and_events(
    console: Console,
) -> None:
    canary_in_flight(console)
    text = console.client().get("/ui/deployments/bc").text
    current = r'<li class="step-current" aria-current="step">pause: until promoted</li>'
    assert re.search(current, text)
    assert re.search(r'data-revision="2".*?25%', text, re.S)
    assert 'data-number="1"' in text and 'data-number="2"' in text
    assert "RevisionCreated" in text and "bc-" in text
    assert "loopline rollout abort deployment/bc" in text


def test_the_live_stream_sends_the_live_block_as_an_update_event(console: Console) -> None:
    canary_in_flight(console)
    with console.client().stream("GET", "/ui/live/deployments/bc?max_events=1") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    assert "event: update\n" in body
    data = "\n".join(line[6:] for line in body.splitlines() if line.startswith("data: "))
    assert 'id="phase"' in data and "<html" not in data


def test_a_bad_max_events_is_a_400_naming_it(console: Console) -> None:
    r = console.client().get("/ui/live/overview?max_events=x")
    assert r.status_code == 400 and "max_events" in r.text


def test_the_overview_pages_by_name_with_an_after_deep_link(console: Console) -> None:
    for i in range(53):
        console.service.apply(deployment(f"d{i:02d}", canary=False, replicas=0))
    c = console.client()
    first = c.get("/ui/").text
    assert first.count('<tr id="dep-') == 50
    assert 'href="/ui/?after=d49"' in first
    second = c.get("/ui/?after=d49").text
    assert re.findall(r'<tr id="dep-(d\d+)"', second) == ["d50", "d51", "d52"]
    assert 'rel="next"' not in second


def test_a_bad_after_is_a_400_page_naming_the_parameter(console: Console) -> None:
    r = console.client().get("/ui/runs?after=abc")
    assert r.status_code == 400 and "after = &#39;abc&#39; is invalid" in r.text


def test_an_unknown_deployment_is_a_404_page(console: Console) -> None:
    r = console.client().get("/ui/deployments/nope")
    assert r.status_code == 404 and 'role="alert"' in r.text


def test_the_registry_shows_versions_aliases_deployments_and_history(console: Console) -> None:
    console.service.apply(deployment(canary=False))
    c = console.client()
    assert 'href="/ui/models/bc"' in c.get("/ui/models").text
    text = c.get("/ui/models/bc").text
    row = re.search(r'<tr data-version="1">.*?</tr>', text, re.S)
    assert row is not None and "@champion" in row.group() and "/ui/deployments/bc" in row.group()
    assert "set: — → 1" in text and "baseline" in text


def test_an_alias_move_is_recorded_with_its_reason_and_shows_the_command(
    console: Console,
) -> None:
    c = console.client(signed_in=True)
    csrf = csrf_of(c.get("/ui/models/bc").text)
    r = c.post("/ui/models/bc/aliases", headers={"X-CSRF-Token": csrf},
               data={"alias": "champion", "version": "2", "why": "v2 is better"})  # fmt: skip
    assert r.status_code == 200 and "loopline models alias set bc champion 2 --why" in r.text
    assert console.registry.get_model("bc").aliases["champion"] == 2
    assert console.registry.alias_history("bc")[0].who == "web console"
    missing = c.post("/ui/models/bc/aliases", headers={"X-CSRF-Token": csrf},
                     data={"alias": "champion", "version": "1", "why": ""})  # fmt: skip
    assert missing.status_code == 400 and "why is missing" in missing.text


def test_runs_list_and_a_run_dag_with_status_and_cache_hits(console: Console) -> None:
    console.runner.run(tiny_pipeline())
    console.runner.run(tiny_pipeline())
    c = console.client()
    runs = c.get("/ui/runs").text
    ids = re.findall(r'<tr data-run="(\d+)"', runs)
    assert len(ids) == 2 and int(ids[0]) > int(ids[1])
    assert "3/3" in runs  # the second run was all cache hits
    run = c.get(f"/ui/runs/{ids[0]}").text
    nodes = re.findall(r'<g class="node [a-z]+" id="node-(\w+)" data-status="(\w+)" '
                       r'data-cached="(\w+)"', run)  # fmt: skip
    assert nodes == [("ingest", "cached", "true"), ("stats", "cached", "true"),
                     ("train", "cached", "true")]  # fmt: skip
    assert len(re.findall(r'<path class="edge"', run)) == 3


def test_pages_carry_the_csp_and_no_inline_script(console: Console) -> None:
    console.service.apply(deployment())
    console.runner.run(tiny_pipeline())
    c = console.client(signed_in=True)
    for path in ("/ui/", "/ui/deployments/bc", "/ui/models", "/ui/models/bc", "/ui/runs",
                 "/ui/runs/latest", "/ui/login"):  # fmt: skip
        r = c.get(path)
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        for tag in re.findall(r"<script[^>]*>", r.text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert re.search(r"\son[a-z]+=", r.text) is None, path


def test_the_vendored_files_match_vendor_json() -> None:
    for folder in (VENDOR, Path(__file__).parent.parent / "e2e" / "vendor"):
        entries = json.loads((folder / "VENDOR.json").read_text())
        assert entries
        for e in entries:
            data = (folder / e["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == e["sha256"], e["name"]
            assert e["licence"] and e["version"]


def test_static_files_are_served_without_a_session(console: Console) -> None:
    r = console.client(remote=True).get("/ui/static/vendor/htmx.min.js")
    assert r.status_code == 200 and "htmx" in r.text[:2000]


@pytest.mark.parametrize("host", ["evil.example", "attacker.test:8000"])
def test_the_console_is_behind_the_hosts_allow_list(console: Console, host: str) -> None:
    r = console.client(signed_in=True).get("/ui/", headers={"Host": host})
    assert r.status_code == 421


def test_the_sign_in_form_returns_to_the_page_that_asked(console: Console) -> None:
    form = console.client(remote=True).get("/ui/login?next=/ui/models/bc")
    assert form.status_code == 200 and 'name="next" value="/ui/models/bc"' in form.text

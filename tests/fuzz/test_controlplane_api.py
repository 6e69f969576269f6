"""Fuzzing the control plane's REST API: mutated Deployment, AnalysisTemplate, Monitor and
Trigger documents, names with control and non-ASCII characters, and query parameters.

The control plane is the one ``loopline controlplane`` builds (state in a SQLite metadata
database, a registry holding ``bc``), with its API on a loopback port of this process; its
sync loop does not run, so no replica process starts. Every answer is below 500 with a JSON
error body; a refused document names its field; nothing is half-stored: after every request
the kind's list and the object itself still read back as strict JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.controlplane.conftest import TOKEN, register_bc
from tests.fuzz.documents import AUTOSCALED, DEPLOYMENTS, MONITOR, TEMPLATE, trigger
from tests.fuzz.mutations import FUZZ, WEIRD_TEXT, mutated, weird_values

from loopline.bundle import infer_signature, save_model
from loopline.controlplane.api import create_app
from loopline.controlplane.build import build_controlplane
from loopline.platform import Platform
from loopline.settings import Settings

PIPELINE = Path(__file__).resolve().parents[1] / "triggers" / "pipelines" / "retrain.py"
NAMES_A_FIELD = re.compile(r"[Ff]ield (\(document\)|[A-Za-z0-9_.\[\]]+)")
"""A refusal of a spec field names it; the JSON error then carries it as ``field`` (a
document-level refusal, unknown top-level keys, has no single field)."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""The documented name rule (``loopline.types.check_name``), matched in full."""
COLLECTIONS = {
    "Deployment": "deployments",
    "AnalysisTemplate": "analysistemplates",
    "Monitor": "monitors",
    "Trigger": "triggers",
}


@dataclass
class Api:
    http: httpx.Client

    def put(self, doc: Any, kind: str, name: str) -> httpx.Response:
        return self.http.put(
            f"/v1/{COLLECTIONS[kind]}/{quote(name, safe='')}",
            content=json.dumps(doc, allow_nan=True),
            headers={"Content-Type": "application/json"},
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    base = tmp_path_factory.mktemp("fuzz-controlplane")
    x, y = load_breast_cancer(return_X_y=True)
    bundle = save_model(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y),
        base / "bundle",
        signature=infer_signature(x, y),
        methods=("predict",),
        input_example=x[:2],
    )
    settings_ = Settings.from_env(
        {
            "LOOPLINE_DB_URL": f"sqlite:///{base}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(base / "artifacts"),
            "LOOPLINE_HOME": str(base / "home"),
        }
    )
    platform = Platform(settings_)
    register_bc(platform.metadata, platform.artifacts, [bundle])
    service = build_controlplane(platform)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(service, token=TOKEN), log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start within 20 s"
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            a = Api(http)
            # the objects the mutated documents refer to, so that valid ones are accepted,
            # and the valid documents themselves, so that a refused change has one to spare
            assert a.put(TEMPLATE, "AnalysisTemplate", "quality").status_code < 300
            for doc in DEPLOYMENTS:
                r = a.put(doc, "Deployment", doc["metadata"]["name"])
                assert r.status_code < 300, r.text
            assert a.put(MONITOR, "Monitor", "bc").status_code < 300
            assert a.put(trigger(str(PIPELINE)), "Trigger", "retrain").status_code < 300
            yield a
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        service.manager.close(timeout=10)
        platform.close()


def check_answer(r: httpx.Response, spec: bool = False) -> Any:
    """Below 500, JSON, and an error names what is wrong (and a refused ``spec``, its
    field)."""
    assert r.status_code < 500, r.text
    body = r.json()
    if r.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"], body
        assert "Traceback" not in body["error"]
        names = NAMES_A_FIELD.search(body["error"])
        if spec and body.get("reason") == "Invalid" and names and names.group(1) != "(document)":
            field = body.get("field")
            assert isinstance(field, str) and field, body
            assert f"ield {field}" in body["error"], body  # the field the message names
    return body


def check_readable(a: Api, kind: str, name: Any) -> Any:
    """Nothing half-stored: the kind's list and the object read back as strict JSON.
    Returns the object's answer (its JSON body)."""
    collection = COLLECTIONS[kind]
    listed = a.http.get(f"/v1/{collection}")
    assert listed.status_code == 200, listed.text
    json.dumps(listed.json(), allow_nan=False)
    if not (isinstance(name, str) and name):
        return None
    one = a.http.get(f"/v1/{collection}/{quote(name, safe='')}")
    assert one.status_code in (200, 400, 404), one.text
    body = check_answer(one)
    json.dumps(body, allow_nan=False)
    return body


def fuzz_put(a: Api, doc: Any, kind: str) -> httpx.Response:
    """PUT ``doc``; a refused one leaves the stored object (if any) exactly as it was."""
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    url_name = name if isinstance(name, str) and name.strip("/.") else "fallback"
    before = check_answer(a.http.get(f"/v1/{COLLECTIONS[kind]}/{quote(url_name, safe='')}"))
    r = a.put(doc, kind, url_name)
    check_answer(r, spec=True)
    after = check_readable(a, kind, url_name)
    if r.status_code >= 400:
        assert after == before, f"a refused {kind} changed what was stored: {r.text}"
    return r


@settings(FUZZ, max_examples=40)
@given(doc=st.sampled_from(DEPLOYMENTS).flatmap(mutated))
def test_a_mutated_deployment_never_gets_a_5xx_and_is_never_half_stored(api: Api, doc: Any) -> None:
    fuzz_put(api, doc, "Deployment")


@settings(FUZZ, max_examples=25)
@given(doc=mutated(TEMPLATE))
def test_a_mutated_analysis_template_never_gets_a_5xx_and_is_never_half_stored(
    api: Api, doc: Any
) -> None:
    fuzz_put(api, doc, "AnalysisTemplate")
    assert api.put(TEMPLATE, "AnalysisTemplate", "quality").status_code < 300  # put it back


@settings(FUZZ, max_examples=25)
@given(doc=mutated(MONITOR))
def test_a_mutated_monitor_never_gets_a_5xx_and_is_never_half_stored(api: Api, doc: Any) -> None:
    fuzz_put(api, doc, "Monitor")


@settings(FUZZ, max_examples=25)
@given(doc=mutated(trigger(str(PIPELINE))))
def test_a_mutated_trigger_never_gets_a_5xx_and_is_never_half_stored(api: Api, doc: Any) -> None:
    fuzz_put(api, doc, "Trigger")


names = st.one_of(
    st.sampled_from(WEIRD_TEXT),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
)


@settings(FUZZ, max_examples=25)
@given(name=names.filter(lambda n: n != ""), kind=st.sampled_from(sorted(COLLECTIONS)))
def test_any_name_in_a_url_gets_a_json_answer_below_500(api: Api, name: str, kind: str) -> None:
    collection = COLLECTIONS[kind]
    path = f"/v1/{collection}/{quote(name, safe='')}"
    check_answer(api.http.get(path))
    check_answer(api.http.delete(path))
    check_answer(api.http.put(path, content=b"{}"))
    check_readable(api, kind, name)


@settings(FUZZ, max_examples=25)
@given(name=names)
@example(name="nl\n")  # the example: a valid name before issue #11
def test_any_name_in_a_document_gets_a_json_answer_below_500(api: Api, name: str) -> None:
    doc = json.loads(json.dumps(DEPLOYMENTS[0]))
    doc["metadata"]["name"] = name
    del doc["spec"]["port"]  # one deployment per port: keep the name the only question
    r = fuzz_put(api, doc, "Deployment")
    if r.status_code < 300:
        assert NAME.fullmatch(name), f"the name {name!r} was accepted"


QUERY_ENDPOINTS = (
    ("/v1/deployments/rolling/events", "limit"),
    ("/v1/triggers/retrain/history", "limit"),
    ("/v1/monitors/bc/windows", "limit"),
    ("/v1/monitors/bc/windows", "version"),
    ("/v1/replicas/rolling-0/log", "tail"),
)
query_values = st.one_of(
    st.sampled_from(["²", "١٢٣", "-1", "1e3", "0x10", " 1", "1 ", "", "9" * 400, "NaN", "\x00"]),
    st.integers(-(10**30), 10**30).map(str),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)


@settings(FUZZ, max_examples=60)
@given(where=st.sampled_from(QUERY_ENDPOINTS), value=query_values)
def test_any_query_parameter_gets_an_answer_below_500(
    api: Api, where: tuple[str, str], value: str
) -> None:
    path, key = where
    r = api.http.get(f"{path}?{key}={quote(value, safe='')}")
    assert r.status_code < 500, r.text
    if r.headers.get("content-type", "").startswith("application/json"):
        check_answer(r)


verb_values = st.one_of(weird_values, st.integers(0, 5), st.sampled_from(["bc/1", "bc@champion"]))
VERBS = (
    ("PUT", "scale", "replicas"),
    ("PATCH", "scale", "replicas"),
    ("PUT", "model", "model"),
    ("PUT", "autoscaling", "autoscaling"),
    ("POST", "rollout/undo", "toRevision"),
    ("POST", "rollout/promote", "full"),
    ("POST", "rollout/pause", None),
    ("POST", "rollout/resume", None),
    ("POST", "rollout/abort", None),
    ("POST", "rollout/retry", None),
)


@settings(FUZZ, max_examples=50)
@given(
    deployment=st.sampled_from(DEPLOYMENTS),
    verb=st.sampled_from(VERBS),
    value=st.one_of(verb_values, mutated(AUTOSCALED["spec"]["autoscaling"])),
    raw=st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"NaN", b"[]", b"{"])),
)
def test_any_body_on_a_deployments_verbs_gets_a_json_answer_below_500(
    api: Api,
    deployment: dict[str, Any],
    verb: tuple[str, str, str | None],
    value: Any,
    raw: bytes | None,
) -> None:
    method, path, key = verb
    name = deployment["metadata"]["name"]
    body = raw if raw is not None else json.dumps({key: value} if key else {}).encode()
    check_answer(api.http.request(method, f"/v1/deployments/{name}/{path}", content=body))
    check_readable(api, "Deployment", name)


header_text = st.one_of(
    st.sampled_from(
        ["127.0.0.1", "localhost", "127.0.0.1:1", "[::1]", "evil.example", "", " ", "a" * 300,
         "localhost.", "127.0.0.1.nip.io", "0x7f000001", "xn--e1afmkfd", "LOCALHOST"]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)  # fmt: skip
auth_text = st.one_of(
    st.just(f"Bearer {TOKEN}"),
    st.sampled_from(["", "Bearer", "Bearer ", "bearer x", "Basic dXNlcjpwYXNz", "Bearer " * 50]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
)


@settings(FUZZ, max_examples=40)
@given(
    host=header_text,
    authorization=auth_text,
    method=st.sampled_from(["GET", "PUT", "DELETE"]),
    path=st.sampled_from(["/v1/deployments", "/v1/deployments/rolling", "/healthz", "/nope"]),
)
def test_any_host_and_authorization_header_gets_a_json_answer_below_500(
    api: Api, host: str, authorization: str, method: str, path: str
) -> None:
    headers = {"Host": host.strip(), "Authorization": authorization.strip()}  # h11's rule
    body = json.dumps(DEPLOYMENTS[0]).encode() if method == "PUT" else None
    r = api.http.request(method, path, headers=headers, content=body)
    check_answer(r)
    check_readable(api, "Deployment", "rolling")


# ---- what the fuzzers found (both answered 500 before issue #11's fixes) ------------------------


@pytest.mark.parametrize(
    "path", ["/v1/deployments/rolling/events?limit=²", "/v1/monitors/bc/windows?limit=²"]
)
def test_a_non_ascii_digit_in_a_query_parameter_is_a_400(api: Api, path: str) -> None:
    r = api.http.get(path)
    assert r.status_code == 400, r.text
    assert "limit" in r.json()["error"]


def test_a_limit_too_large_for_the_database_is_a_400_naming_the_parameter(api: Api) -> None:
    r = api.http.get(f"/v1/monitors/bc/windows?limit={10**30}")
    assert r.status_code == 400, r.text
    assert "limit" in r.json()["error"]


# ---- findings of the fuzz suite, fixed (issue #11) ------------------------------------------


def test_a_bad_pause_duration_is_a_400_naming_the_field(api: Api) -> None:
    doc = json.loads(json.dumps(DEPLOYMENTS[2]))
    doc["spec"]["strategy"]["canary"]["steps"][1]["pause"]["duration"] = "soon"
    r = api.put(doc, "Deployment", "canary")
    assert r.status_code == 400, r.text
    assert r.json().get("field") == "spec.strategy.canary.steps[1].pause.duration", r.text


def nested(depth: int) -> str:
    """JSON text of a list nested ``depth`` deep (written out: encoding it would recurse)."""
    return "[" * depth + "0" + "]" * depth


def test_a_deeply_nested_body_is_a_400(api: Api) -> None:
    r = api.http.put("/v1/deployments/rolling", content=b"[" * 100_000)
    assert r.status_code == 400, r.text
    check_answer(r)


@pytest.mark.parametrize("depth", [100, 900])
def test_a_trigger_with_deeply_nested_params_is_refused_or_reads_back(api: Api, depth: int) -> None:
    doc = trigger(str(PIPELINE))
    doc["metadata"]["name"] = f"deep-{depth}"
    doc["spec"]["run"]["params"] = {"deep": "DEEP"}
    body = json.dumps(doc).replace('"DEEP"', nested(depth))
    r = api.http.put(f"/v1/triggers/deep-{depth}", content=body)
    check_answer(r, spec=True)
    check_readable(api, "Trigger", f"deep-{depth}")
    check_answer(api.http.delete(f"/v1/triggers/deep-{depth}"))

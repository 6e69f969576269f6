"""``loopline autoscale simulate``: the example trace through the real command (click's
CliRunner), its JSON equal to the simulator's, and errors that name the file, field and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from loopline.cli.main import cli
from loopline.cli.output import reset_consoles
from loopline.deploy.autoscaler_sim import CapacityModel, LoadTrace, simulate
from loopline.deploy.spec import DeploymentSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "taxi"
TRACE = EXAMPLES / "load-trace.csv"
DEPLOYMENT = EXAMPLES / "autoscaled-deployment.yaml"


def run(*args: str | Path) -> Result:
    reset_consoles()  # an earlier test in this process may have made them at another width
    return CliRunner().invoke(cli, ["autoscale", *map(str, args)], env={"COLUMNS": "1000"})


def flat(text: str) -> str:
    return " ".join(text.split())


def test_simulate_shows_the_chart_the_timeline_and_the_events_of_the_example() -> None:
    result = run("simulate", "--trace", TRACE, "-f", DEPLOYMENT)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("deployment/taxi · 30:00 of load-trace.csv · 50 rps per replica")
    assert "replicas" in out and "load " in out and "peak 260 rps" in out
    assert "TIME" in out and "DESIRED" in out and "CPU %" in out and "IN_FLIGHT_REQUESTS" in out
    assert "New size: 6; reason: pods metric in_flight_requests above target" in out


def test_simulate_json_is_the_simulators_result_for_the_files_spec() -> None:
    options = ["--capacity-rps", "40", "--startup-seconds", "30", "--sync-period", "30"]
    result = run("simulate", "--trace", TRACE, "-f", DEPLOYMENT, "--json", *options)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    spec = DeploymentSpec.from_yaml(DEPLOYMENT.read_text())
    assert spec.autoscaling is not None
    expected = simulate(spec.autoscaling, LoadTrace.from_csv(TRACE.read_text()),
                        CapacityModel(capacity_rps=40, startup_seconds=30),
                        sync_period=30, initial_replicas=spec.replicas)  # fmt: skip
    assert doc["timeline"] == expected.to_dict()["timeline"]
    assert doc["events"] == expected.to_dict()["events"] and doc["events"]
    assert len(doc["timeline"]) == 1800 // 30
    assert (doc["deployment"], doc["capacityRps"], doc["syncPeriodSeconds"]) == ("taxi", 40, 30)
    assert doc["autoscaling"] == spec.autoscaling.to_dict()


def test_a_deployment_without_autoscaling_is_an_error_naming_file_and_field(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("apiVersion: loopline/v1\nkind: Deployment\nmetadata: {name: web}\n"
                     "spec: {model: iris/1}\n")  # fmt: skip
    result = run("simulate", "--trace", TRACE, "-f", plain)
    assert result.exit_code == 1
    assert f"error: {plain}: Deployment field spec.autoscaling is missing" in flat(result.stderr)


def test_an_invalid_autoscaling_block_is_an_error_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEPLOYMENT.read_text().replace("maxReplicas: 10", "maxReplicas: 1"))
    result = run("simulate", "--trace", TRACE, "-f", bad)
    assert result.exit_code == 1
    assert (f"error: {bad}: Deployment field spec.autoscaling.maxReplicas = 1 is invalid: it "
            "must be at least 2 and at most 1000.") in flat(result.stderr)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [("seconds,requests_per_second\n0,10\n60,ten\n",
      "line 3 is '60,ten'; write two numbers: seconds,requests_per_second."),
     ("second,rps\n0,10\n", "line 1 is 'second,rps'; the header must be")],
)  # fmt: skip
def test_a_bad_trace_is_an_error_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(text)
    result = run("simulate", "--trace", trace, "-f", DEPLOYMENT)
    assert result.exit_code == 1
    assert f"error: {trace} {message}" in flat(result.stderr)


def test_a_missing_trace_file_is_named() -> None:
    result = run("simulate", "--trace", "nowhere.csv", "-f", DEPLOYMENT)
    assert result.exit_code == 1
    assert "Cannot read trace 'nowhere.csv': No such file or directory." in flat(result.stderr)


def test_the_group_lists_simulate() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "autoscale" in result.stdout
    assert "simulate" in run("--help").stdout

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.pipeline import Dataset, Input, Model, Output, Param, Pipeline, component
from loopline.pipeline.kubeflow import KfpTarget, compile_pipeline, platform_spec, step_fingerprint
from loopline.pipeline.kubeflow.ir import memory_gigabytes
from loopline.pipeline.loader import load_pipeline

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart" / "pipeline.py"
TARGET = KfpTarget(image="localhost/loopline:test", pipeline_file="pipeline.py")


@component
def make(data: Output[Dataset], rows: int = 5, note: str | None = None) -> None:
    (data.path / "rows.txt").write_text(str(rows))


@component(retries=2, cache=False, cpu="500m", memory="4Gi")
def fit(
    data: Input[Dataset], model: Output[Model], lr: float, base: Input[Model] | None = None
) -> None:
    (model.path / "m.txt").write_text(str(lr))


def _pipeline() -> Pipeline:
    a = make(rows=7)
    b = fit(data=a.outputs.data, lr=Param("lr", 0.1))
    return Pipeline("two_steps", [a, b], description="make then fit")


def _spec() -> dict[str, Any]:
    return compile_pipeline(_pipeline(), TARGET)


def _parse(spec: dict[str, Any]) -> None:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def test_every_step_is_a_container_running_loopline_step_exec_with_the_executor_input() -> None:
    spec = _spec()
    container = spec["deploymentSpec"]["executors"]["exec-fit"]["container"]
    assert container["image"] == "localhost/loopline:test"
    assert container["command"] == ["loopline", "step", "exec"]
    args = container["args"]
    assert args[args.index("--executor-input") + 1] == "{{$}}"
    assert args[args.index("--step") + 1] == "fit"
    assert args[args.index("--pipeline-file") + 1] == "pipeline.py"
    assert args[args.index("--run-name") + 1] == "{{$.pipeline_job_name}}"
    step = _pipeline().step("fit")
    assert args[args.index("--code-fingerprint") + 1] == step_fingerprint(step)


def test_types_parameters_wiring_caching_retries_and_resources_are_carried_over() -> None:
    spec = _spec()
    fit_comp = spec["components"]["comp-fit"]
    arts = fit_comp["inputDefinitions"]["artifacts"]
    assert arts["data"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert arts["base"] == {
        "artifactType": {"schemaTitle": "system.Model", "schemaVersion": "0.0.1"},
        "isOptional": True,
    }
    assert fit_comp["inputDefinitions"]["parameters"]["lr"] == {"parameterType": "NUMBER_DOUBLE"}
    assert fit_comp["outputDefinitions"]["artifacts"]["model"]["artifactType"]["schemaTitle"] == (
        "system.Model"
    )
    make_params = spec["components"]["comp-make"]["inputDefinitions"]["parameters"]
    assert make_params["rows"] == {
        "parameterType": "NUMBER_INTEGER",
        "isOptional": True,
        "defaultValue": 5,
    }
    assert make_params["note"] == {"parameterType": "STRING", "isOptional": True}
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["make"]["inputs"]["parameters"]["rows"] == {"runtimeValue": {"constant": 7}}
    assert tasks["make"]["cachingOptions"] == {"enableCache": True}
    fit_task = tasks["fit"]
    assert fit_task["dependentTasks"] == ["make"]
    assert fit_task["inputs"]["artifacts"]["data"] == {
        "taskOutputArtifact": {"producerTask": "make", "outputArtifactKey": "data"}
    }
    assert fit_task["inputs"]["parameters"]["lr"] == {"componentInputParameter": "lr"}
    assert fit_task["cachingOptions"] == {"enableCache": False}
    assert fit_task["retryPolicy"]["maxRetryCount"] == 2
    assert spec["root"]["inputDefinitions"]["parameters"]["lr"] == {
        "parameterType": "NUMBER_DOUBLE",
        "isOptional": True,
        "defaultValue": 0.1,
    }
    resources = spec["deploymentSpec"]["executors"]["exec-fit"]["container"]["resources"]
    assert resources == {
        "cpuLimit": 0.5,
        "resourceCpuLimit": "500m",
        "memoryLimit": pytest.approx(4.294967296),
        "resourceMemoryLimit": "4Gi",
    }
    assert "resources" not in spec["deploymentSpec"]["executors"]["exec-make"]["container"]


def test_memory_quantities_convert_to_decimal_gigabytes_as_kfp_does() -> None:
    assert memory_gigabytes("512M") == pytest.approx(0.512)
    assert memory_gigabytes("1Gi") == pytest.approx(1.073741824)


def test_a_bad_cpu_quantity_is_refused_naming_the_option() -> None:
    with pytest.raises(InvalidDefinitionError, match=r"cpu='two' must be a CPU quantity"):
        _pipeline().step("fit").with_options(cpu="two")


def test_step_names_that_collide_after_kfp_sanitizing_are_refused() -> None:
    a = make().with_id("load_data")
    b = make().with_id("load-data")
    pipe = Pipeline("clash", [a, b])
    with pytest.raises(InvalidDefinitionError, match=r"'load_data' and 'load-data' both become"):
        compile_pipeline(pipe, TARGET)


def test_an_image_reference_with_spaces_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"Image 'my image' is not an image reference"):
        KfpTarget(image="my image", pipeline_file="pipeline.py")


def test_the_compiled_quickstart_parses_as_a_kfp_pipeline_spec() -> None:
    pytest.importorskip("kfp.pipeline_spec", reason="kfp-pipeline-spec (dev extra) is missing")
    spec = compile_pipeline(load_pipeline(QUICKSTART), TARGET)
    _parse(spec)
    _parse(_spec())


def test_a_broken_ir_fails_to_parse_with_kfp_pipeline_spec() -> None:
    pytest.importorskip("kfp.pipeline_spec", reason="kfp-pipeline-spec (dev extra) is missing")
    from google.protobuf.json_format import ParseError

    broken = copy.deepcopy(_spec())
    broken["root"]["dag"]["tasks"]["fit"]["componentRef"]["nam"] = "comp-fit"
    with pytest.raises(ParseError, match=r'has no field named "nam"'):
        _parse(broken)


def test_the_compiled_quickstart_loads_in_kfp_and_recompiles(tmp_path: Path) -> None:
    pytest.importorskip("kfp.dsl", reason="kfp is not installed (pip install 'loopline[dev]')")
    from kfp import compiler, components, dsl

    file = tmp_path / "quickstart.yaml"
    file.write_text(yaml.safe_dump(compile_pipeline(load_pipeline(QUICKSTART), TARGET)))
    loaded = components.load_component_from_file(str(file))
    assert loaded.name == "quickstart"

    @dsl.pipeline(name="outer")
    def outer():  # type: ignore[no-untyped-def]  # kfp reads real (not string) annotations
        loaded(c=0.5, max_depth=2)

    compiler.Compiler().compile(outer, str(tmp_path / "outer.yaml"))
    outer_spec = yaml.safe_load((tmp_path / "outer.yaml").read_text())
    assert "comp-quickstart" in outer_spec["components"]


def test_a_broken_ir_fails_to_load_in_kfp(tmp_path: Path) -> None:
    pytest.importorskip("kfp.dsl", reason="kfp is not installed (pip install 'loopline[dev]')")
    from google.protobuf.json_format import ParseError
    from kfp import components

    broken = copy.deepcopy(_spec())
    broken["components"]["comp-fit"]["inputDefinitions"]["parameters"]["lr"]["parameterType"] = (
        "NUMBER_COMPLEX"
    )
    file = tmp_path / "broken.yaml"
    file.write_text(yaml.safe_dump(broken))
    with pytest.raises(ParseError, match="Invalid enum value NUMBER_COMPLEX"):
        components.load_component_from_file(str(file))


def test_the_stores_secret_reaches_every_step_through_the_kubernetes_platform_document(
    tmp_path: Path,
) -> None:
    pytest.importorskip("kfp.dsl", reason="kfp is not installed (pip install 'loopline[dev]')")
    from google.protobuf import json_format
    from kfp import components
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = _spec()
    platform = platform_spec(spec, "loopline-stores")
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert sorted(executors) == ["exec-fit", "exec-make"]
    assert executors["exec-fit"]["secretAsEnv"] == [{
        "secretName": "loopline-stores",
        "keyToEnv": [{"secretKey": "LOOPLINE_DB_URL", "envVar": "LOOPLINE_DB_URL"},
                     {"secretKey": "LOOPLINE_ARTIFACT_ROOT", "envVar": "LOOPLINE_ARTIFACT_ROOT"}],
    }]  # fmt: skip
    file = tmp_path / "two_steps.yaml"
    file.write_text(yaml.safe_dump(spec) + "---\n" + yaml.safe_dump(platform))
    loaded = components.load_component_from_file(str(file))
    assert "kubernetes" in loaded.platform_spec.platforms


def test_a_stores_secret_that_is_not_a_kubernetes_name_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"Secret name 'Stores_1' is not a Kubernetes name"):
        platform_spec(_spec(), "Stores_1")

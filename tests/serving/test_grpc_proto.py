"""grpc_predict_v2.proto, the message module generated from it, and its wire compatibility
with the Open Inference Protocol clients (tritonclient's copy of the same package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tritonclient.grpc import service_pb2 as triton

from loopline.serving import grpc_predict_v2_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
OIP_METHODS = ["ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
               "ModelInfer"]  # fmt: skip


def test_the_committed_message_module_is_what_the_proto_generates() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_grpc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


def test_the_proto_ships_in_the_package_beside_its_module() -> None:
    proto = Path(pb.__file__).with_name("grpc_predict_v2.proto")
    assert "service GRPCInferenceService" in proto.read_text()
    assert pb.FILE.name == "grpc_predict_v2.proto" and pb.FILE.package == "inference"


def test_the_service_has_the_open_inference_methods_and_kserves_repository_methods() -> None:
    methods = {
        m.name: (m.input_type.full_name, m.output_type.full_name) for m in pb.SERVICE.methods
    }
    assert pb.SERVICE.full_name == pb.SERVICE_NAME == "inference.GRPCInferenceService"
    for name in OIP_METHODS:
        assert methods[name] == (f"inference.{name}Request", f"inference.{name}Response")
    assert set(methods) == {*OIP_METHODS, "RepositoryModelLoad", "RepositoryModelUnload"}


def test_every_message_field_is_tritons_field_of_the_same_number_and_type() -> None:
    """Same names, numbers and types as Triton's grpc_service.proto (a superset of the Open
    Inference Protocol), so each side parses what the other writes."""

    def fields(descriptor: object) -> dict[str, tuple[int, int, str]]:
        out = {}
        for f in descriptor.fields:  # type: ignore[attr-defined]
            sub = f.message_type.full_name if f.message_type is not None else ""
            out[f.name] = (f.number, f.type, sub)
        for nested in descriptor.nested_types:  # type: ignore[attr-defined]
            out.update({f"{nested.name}.{k}": v for k, v in fields(nested).items()})
        return out

    shared = [m for m in pb.FILE.message_types_by_name if not m.startswith("Repository")]
    assert len(shared) == 14
    for name in shared:
        ours = fields(pb.FILE.message_types_by_name[name])
        theirs = fields(triton.DESCRIPTOR.message_types_by_name[name])
        assert ours.items() <= theirs.items(), name


def test_messages_coexist_with_tritonclients_and_cross_the_wire_both_ways() -> None:
    ours = pb.ModelInferRequest(model_name="m", model_version="2", id="r1")
    tensor = ours.inputs.add(name="x", datatype="FP64", shape=[1, 2])
    tensor.contents.fp64_contents.extend([0.5, 1.5])
    ours.parameters["p"].double_param = 0.25
    ours.parameters["q"].uint64_param = 2**64 - 1
    ours.outputs.add(name="y").parameters["binary_data"].bool_param = True
    ours.raw_input_contents.append(b"\x00\x01")
    theirs = triton.ModelInferRequest.FromString(ours.SerializeToString())
    assert theirs.inputs[0].contents.fp64_contents == [0.5, 1.5]
    assert theirs.parameters["q"].uint64_param == 2**64 - 1
    assert pb.ModelInferRequest.FromString(theirs.SerializeToString()) == ours
    answer = triton.ModelInferResponse(model_name="m", id="r1", raw_output_contents=[b"ab"])
    answer.outputs.add(name="y", datatype="BYTES", shape=[1])
    assert pb.ModelInferResponse.FromString(answer.SerializeToString()).outputs[0].name == "y"


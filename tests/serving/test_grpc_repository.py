"""KServe's RepositoryModelLoad / RepositoryModelUnload over gRPC: the repository extension's
load and unload, with the token as metadata, each error's status code, and an unload that
lets a gRPC call in flight finish."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from tests.serving.faulty_model import LOADER, SLOW, save_faulty
from tests.serving.grpc_harness import GrpcServer

from loopline.bundle import Trust
from loopline.serving import ServerOptions, create_app
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.serving.repository import FolderRepository, LoadParameters, RepositoryOptions
from loopline.testing.artifacts import wait_for

TOKEN = "repository-token-0123456789abcdef"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture()
def server(tmp_path: Path, models: Any) -> Iterator[GrpcServer]:
    root = tmp_path / "repo"
    shutil.copytree(models.dirs["lr"], root / "lr" / "1")
    shutil.copytree(models.dirs["tab"], root / "tab" / "1")
    save_faulty(root / "faulty")
    (root / "faulty" / "faulty").rename(root / "faulty" / "1")
    source = FolderRepository(root, Trust(loaders=frozenset({LOADER})), allow_unverified=True)
    served = [source.load(source.resolve("lr", LoadParameters()))]
    options = ServerOptions(repository=RepositoryOptions(source=source, token=TOKEN))
    with GrpcServer(create_app(served, options=options)) as s:
        yield s


@pytest.fixture()
def channel(server: GrpcServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def rpc(channel: grpc.Channel, method: str, request: Any, metadata: Any = AUTH) -> Any:
    stub = channel.unary_unary(
        f"/{pb.SERVICE_NAME}/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=getattr(pb, f"{method}Response").FromString,
    )
    return stub(request, metadata=metadata, timeout=60)


def refused(channel: grpc.Channel, method: str, request: Any, metadata: Any = AUTH) -> Any:
    with pytest.raises(grpc.RpcError) as error:
        rpc(channel, method, request, metadata)
    return error.value.code(), error.value.details()


def test_a_load_with_the_token_serves_the_model_and_an_unload_stops_it(
    channel: grpc.Channel,
) -> None:
    ready = pb.ModelReadyRequest(name="tab")
    assert refused(channel, "ModelReady", ready)[0] == grpc.StatusCode.NOT_FOUND
    loaded = rpc(channel, "RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="tab"))
    assert (loaded.model_name, loaded.isLoaded) == ("tab", True)
    assert rpc(channel, "ModelReady", ready).ready
    unloaded = rpc(
        channel, "RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name="tab")
    )
    assert (unloaded.model_name, unloaded.isUnloaded) == ("tab", True)
    code, message = refused(channel, "ModelReady", ready)
    assert code == grpc.StatusCode.NOT_FOUND
    assert message.startswith("Model 'tab' is not loaded (unloaded)")


@pytest.mark.parametrize(
    "metadata", [(), (("authorization", "Bearer wrong-token-0123456789"),)], ids=["none", "wrong"]
)
def test_a_change_without_the_token_is_unauthenticated(
    channel: grpc.Channel, metadata: Any
) -> None:
    code, message = refused(
        channel, "RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="tab"), metadata
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert message.startswith("Model load needs the server's repository token (metadata")


def test_an_unknown_or_empty_model_name_is_refused(channel: grpc.Channel) -> None:
    code, message = refused(
        channel, "RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="nope")
    )
    assert code == grpc.StatusCode.NOT_FOUND and "'nope'" in message
    code, message = refused(channel, "RepositoryModelUnload", pb.RepositoryModelUnloadRequest())
    assert (code, message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Field 'model_name' must name a model.",
    )


def test_an_unload_lets_the_grpc_call_in_flight_finish(
    channel: grpc.Channel, server: GrpcServer
) -> None:
    rpc(channel, "RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="faulty"))
    request = pb.ModelInferRequest(model_name="faulty")
    request.inputs.add(name="x", datatype="FP64", shape=[1, 1])
    request.raw_input_contents.append(np.array([[SLOW]]).tobytes())  # a second in the model
    infer = channel.unary_unary(
        f"/{pb.SERVICE_NAME}/ModelInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelInferResponse.FromString,
    )
    call = infer.future(request, timeout=60)
    entry = server.app.table.get("faulty", None)
    wait_for(lambda: entry.in_flight == 1, timeout=30, what="the call in flight")
    unload = pb.RepositoryModelUnloadRequest(model_name="faulty")
    assert rpc(channel, "RepositoryModelUnload", unload).isUnloaded
    assert entry.in_flight == 0  # the unload answered once the call was done (it counts)
    assert np.frombuffer(call.result().raw_output_contents[0]).tolist() == [2 * SLOW]

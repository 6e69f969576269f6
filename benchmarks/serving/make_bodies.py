"""Request bodies for the binary-HTTP and gRPC paths, built by Triton's own client library.

Run with the project venv (tritonclient is a dev dependency), after train.py:
    .venv/bin/python benchmarks/serving/make_bodies.py
Writes into $ARTIFACTS/payload/:
  v2bin_{1,32}.bin + .hlen  the body tritonclient.http sends by default (binary input, binary
                            output requested) and its Inference-Header-Content-Length;
  grpc_{lr,rf}_{1,32}.bin   a gRPC-framed ModelInferRequest as tritonclient.grpc sends it
                            (raw_input_contents), for h2load;
  v2bin_taxi_*, grpc_taxi_*, v2_taxi_{1,32}.json  the same for the taxi model (one input per
                            column), after save_loopline.py.
Input "input" (FP64, [n, 30]) and output "predict", as in the V2 JSON payloads.
"""

import json
import os
import pathlib
import struct

import numpy as np
import tritonclient.grpc.service_pb2 as pb
import tritonclient.http as th

HERE = pathlib.Path(__file__).resolve().parent
ART = pathlib.Path(os.environ.get("ARTIFACTS", HERE / "artifacts"))
rows = np.asarray(json.loads((ART / "rows.json").read_text()), dtype=np.float64)

for n in (1, 32):
    x = np.ascontiguousarray(rows[:n])
    inp = th.InferInput("input", list(x.shape), "FP64")
    inp.set_data_from_numpy(x, binary_data=True)
    out = th.InferRequestedOutput("predict", binary_data=True)
    body, hlen = th.InferenceServerClient.generate_request_body([inp], outputs=[out])
    (ART / "payload" / f"v2bin_{n}.bin").write_bytes(body)
    (ART / "payload" / f"v2bin_{n}.hlen").write_text(str(hlen if hlen is not None else 0))
    for model in ("lr", "rf"):
        req = pb.ModelInferRequest(model_name=model)
        t = req.inputs.add()
        t.name, t.datatype = "input", "FP64"
        t.shape.extend(x.shape)
        req.outputs.add().name = "predict"
        req.raw_input_contents.append(x.tobytes())
        msg = req.SerializeToString()
        framed = b"\x00" + struct.pack(">I", len(msg)) + msg
        (ART / "payload" / f"grpc_{model}_{n}.bin").write_bytes(framed)

# The taxi model (save_loopline.py): one input per column (FP64, INT64, BYTES), output
# "predict" (BYTES labels); request parameter content_type=pd, which MLServer needs to hand a
# multi-input request to a scikit-learn pipeline as a DataFrame (loopline ignores it).
TAXI_TYPES = {"distance": ("FP64", np.float64), "hour": ("INT64", np.int64)}


def taxi_inputs(n: int, module):  # tritonclient.http or tritonclient.grpc
    cols = json.loads((ART / "taxi_rows.json").read_text())
    inputs = []
    for name, values in cols.items():
        wire, dtype = TAXI_TYPES.get(name, ("BYTES", object))
        arr = np.asarray(values[:n], dtype=dtype)
        inp = module.InferInput(name, [n], wire)
        if module is th:
            inp.set_data_from_numpy(arr, binary_data=True)
        else:
            inp.set_data_from_numpy(arr)
        inputs.append(inp)
    return inputs


if (ART / "taxi_rows.json").exists():
    import tritonclient.grpc as tg

    for n in (1, 32):
        out = th.InferRequestedOutput("predict", binary_data=True)
        body, hlen = th.InferenceServerClient.generate_request_body(
            taxi_inputs(n, th), outputs=[out], parameters={"content_type": "pd"}
        )
        (ART / "payload" / f"v2bin_taxi_{n}.bin").write_bytes(body)
        (ART / "payload" / f"v2bin_taxi_{n}.hlen").write_text(str(hlen if hlen is not None else 0))
        req = pb.ModelInferRequest(model_name="taxi")
        for inp in taxi_inputs(n, tg):
            req.inputs.append(inp._get_tensor())
            req.raw_input_contents.append(inp._get_content())
        req.outputs.add().name = "predict"
        req.parameters["content_type"].string_param = "pd"
        msg = req.SerializeToString()
        framed = b"\x00" + struct.pack(">I", len(msg)) + msg
        (ART / "payload" / f"grpc_taxi_{n}.bin").write_bytes(framed)
        doc = json.loads((ART / "payload" / f"loopline_taxi_{n}.json").read_text())
        doc["parameters"] = {"content_type": "pd"}
        (ART / "payload" / f"v2_taxi_{n}.json").write_text(json.dumps(doc))
print("bodies written to", ART / "payload")

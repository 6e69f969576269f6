"""Request bodies for the binary-HTTP and gRPC paths, built by Triton's own client library.

Run with the project venv (tritonclient is a dev dependency), after train.py:
    .venv/bin/python benchmarks/serving/make_bodies.py
Writes into $ARTIFACTS/payload/:
  v2bin_{1,32}.bin + .hlen  the body tritonclient.http sends by default (binary input, binary
                            output requested) and its Inference-Header-Content-Length;
  grpc_{lr,rf}_{1,32}.bin   a gRPC-framed ModelInferRequest as tritonclient.grpc sends it
                            (raw_input_contents), for h2load.
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
    for model in ("lr", "rf", "taxi"):
        req = pb.ModelInferRequest(model_name=model)
        t = req.inputs.add()
        t.name, t.datatype = "input", "FP64"
        t.shape.extend(x.shape)
        req.outputs.add().name = "predict"
        req.raw_input_contents.append(x.tobytes())
        msg = req.SerializeToString()
        framed = b"\x00" + struct.pack(">I", len(msg)) + msg
        (ART / "payload" / f"grpc_{model}_{n}.bin").write_bytes(framed)
print("bodies written to", ART / "payload")

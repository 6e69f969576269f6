"""PyTriton peer: Triton's C++ HTTP and gRPC front ends (the tritonserver bundled in
nvidia-pytriton) in front of a Python callable that calls the same scikit-learn model.

PyTriton 0.7 needs numpy<2, so the joblib files of train.py (numpy 2) cannot be unpickled
here: the model is refitted at start-up exactly as train.py fits it (same data, seeds and
scikit-learn 1.9.1); check_paths in paths_bench.py compares every peer's answers.

Run:  MODEL_NAME=lr PORT=18140 python pytriton_server.py   (gRPC on PORT+1, metrics PORT+2)
Env:  INSTANCES (2: model instances = infer callables, like 2 workers), MAX_BATCH (64),
      QUEUE_DELAY_US (1000: the dynamic batcher's max_queue_delay_microseconds; -1 = none)
"""

import os

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

name = os.environ.get("MODEL_NAME", "lr")
port = int(os.environ["PORT"])
instances = int(os.environ.get("INSTANCES", "2"))
max_batch = int(os.environ.get("MAX_BATCH", "64"))
delay = int(os.environ.get("QUEUE_DELAY_US", "1000"))

data = load_breast_cancer()
X_tr, _, y_tr, _ = train_test_split(
    data.data, data.target, test_size=0.25, random_state=0, stratify=data.target
)
if name == "rf":
    model = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0)
else:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
model.fit(X_tr, y_tr)


def make_infer():
    @batch
    def infer(input):
        y = model.predict(input)
        return {"predict": np.asarray(y, dtype=np.int64).reshape(-1, 1)}

    return infer


cfg = TritonConfig(
    http_address="127.0.0.1",
    http_port=port,
    grpc_address="127.0.0.1",
    grpc_port=port + 1,
    metrics_port=port + 2,
    allow_metrics=False,
    allow_grpc=True,
    log_verbose=0,
)
batcher = DynamicBatcher(max_queue_delay_microseconds=delay) if delay >= 0 else None
with Triton(config=cfg) as triton:
    triton.bind(
        model_name=name,
        infer_func=[make_infer() for _ in range(instances)],
        inputs=[Tensor(name="input", dtype=np.float64, shape=(30,))],
        outputs=[Tensor(name="predict", dtype=np.int64, shape=(1,))],
        config=ModelConfig(max_batch_size=max_batch, batcher=batcher),
        strict=False,
    )
    triton.serve()

"""Train the benchmark models exactly like train.py and save them as loopline bundles.

Run with the project venv: ``.venv/bin/python save_loopline.py`` (after train.py).
Writes $ARTIFACTS/loopline_{lr,rf,taxi} and payload/loopline_{1,32}.json,
payload/loopline_taxi_{1,32}.json (V2 bodies; taxi.joblib, taxi_rows.json and taxi_labels.json
for the peers of paths_bench.py), and checks
that the bundles predict exactly what the joblib models of train.py predict (same seeds,
same scikit-learn), without unpickling them: it compares against the expected labels that
train.py's models produce on rows.json, recomputed here.
"""

import json
import os
import pathlib
import shutil

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.bundle import infer_signature, load_model, save_model

HERE = pathlib.Path(__file__).resolve().parent
ART = pathlib.Path(os.environ.get("ARTIFACTS", HERE / "artifacts"))
(ART / "payload").mkdir(parents=True, exist_ok=True)

data = load_breast_cancer()
X_tr, X_te, y_tr, y_te = train_test_split(
    data.data, data.target, test_size=0.25, random_state=0, stratify=data.target
)
rows = np.asarray(json.loads((ART / "rows.json").read_text()))
assert np.array_equal(rows, X_te[:32])

for name in ("lr", "rf"):
    if name == "rf":
        model = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X_tr, y_tr)
    dest = ART / f"loopline_{name}"
    shutil.rmtree(dest, ignore_errors=True)
    save_model(
        model,
        dest,
        signature=infer_signature(X_tr, y_tr),
        input_example=X_te[:2],
        metadata={"name": name},
    )
    loaded = load_model(dest)
    assert np.array_equal(loaded.predict(rows)["predict"], model.predict(rows))
    print(f"{name}: saved {dest.name}, test accuracy {model.score(X_te, y_te):.4f}")

for n in (1, 32):
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": [n, 30],
                "datatype": "FP64",
                "data": rows[:n].ravel().tolist(),
            }
        ]
    }
    (ART / "payload" / f"loopline_{n}.json").write_text(json.dumps(body))


def save_taxi(art: pathlib.Path = ART) -> pathlib.Path:
    """The taxi example's model (ColumnTransformer + HistGradientBoostingClassifier, span 1)
    as ``loopline_taxi``, compiled (``compile="auto"``, checked on its 6,822 training rows),
    and V2 JSON bodies ``payload/loopline_taxi_{1,32}.json`` (one input per column)."""
    from compiled import taxi_model  # the same model as the in-process benchmark

    model, x = taxi_model()
    dest = art / "loopline_taxi"
    shutil.rmtree(dest, ignore_errors=True)
    save_model(
        model, dest, signature=infer_signature(x), methods=("predict", "predict_proba"),
        input_example=x.head(5), metadata={"name": "taxi"}, compile="auto", check_data=x,
    )  # fmt: skip
    loaded = load_model(dest)
    assert loaded.serving_path == "onnx", loaded.manifest.onnx
    types = {"distance": "FP64", "hour": "INT64"}
    for n in (1, 32):
        head = x.head(n)
        body = {
            "inputs": [
                {"name": c, "shape": [n], "datatype": types.get(c, "BYTES"),
                 "data": head[c].tolist()}
                for c in x.columns
            ]
        }  # fmt: skip
        (art / "payload" / f"loopline_taxi_{n}.json").write_text(json.dumps(body))
    # for the peers (paths_bench.py): the scikit-learn pipeline itself (MLServer loads it with
    # mlserver-sklearn, same scikit-learn and numpy), the first 32 rows and their labels
    import joblib

    joblib.dump(model, art / "taxi.joblib")
    head = x.head(32)
    (art / "taxi_rows.json").write_text(json.dumps({c: head[c].tolist() for c in x.columns}))
    (art / "taxi_labels.json").write_text(json.dumps([str(v) for v in model.predict(head)]))
    print(f"taxi: saved {dest.name}, served by {loaded.serving_path}")
    return dest


save_taxi()

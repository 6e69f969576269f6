#!/usr/bin/env bash
# loopline vs peer model servers, side by side in one run, on 127.0.0.1.
#
#   bash run.sh setup    # wrk (apt) + one throwaway venv per peer under $VENV_ROOT (not the project venv)
#   bash run.sh train    # models + payloads into $ARTIFACTS (joblib for peers, bundles for loopline)
#   bash run.sh inproc   # in-process floors: peers' predict/json round trip, loopline's lean path
#   bash run.sh bench    # the interleaved wrk matrix -> $RESULTS/ab.jsonl
#   bash run.sh report   # markdown tables -> $RESULTS/ab_tables.md
#
# Env: VENV_ROOT (/tmp/loopline-bench/venvs), ARTIFACTS (/tmp/loopline-bench/artifacts),
#   RESULTS (./results), WORKERS (2), DURATION (30), PEERS, MODELS, BATCHES, CONC.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
export VENV_ROOT="${VENV_ROOT:-/tmp/loopline-bench/venvs}"
export ARTIFACTS="${ARTIFACTS:-/tmp/loopline-bench/artifacts}"
export RESULTS="${RESULTS:-$HERE/results}"
export WORKERS="${WORKERS:-2}"
export LOOPLINE_VENV="${LOOPLINE_VENV:-$HERE/../../.venv}"
DURATION="${DURATION:-5}"
PEERS="${PEERS:-loopline_batch,loopline,fastapi,kserve_v1,bentoml_batch,bentoml,mlflow}"
MODELS="${MODELS:-lr,rf}"
BATCHES="${BATCHES:-1,32}"
CONC="${CONC:-1,32,64}"
PY="${PYTHON:-python3}"
SK="scikit-learn==1.9.1 numpy==2.4.6"
declare -A REQS=(
  [fastapi]="fastapi==0.165.0 uvicorn[standard]==0.54.0 orjson==3.13.0 pandas==3.1.1 joblib $SK"
  [bentoml]="bentoml==1.4.40 $SK"
  [mlflow]="mlflow==3.17.2 $SK"
  [kserve]="kserve==0.21.0 $SK"
)

case "${1:-}" in
  setup)
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
    for fam in fastapi bentoml mlflow kserve; do
      v="$VENV_ROOT/venv-$fam"
      [ -x "$v/bin/python" ] || "$PY" -m venv "$v"
      # shellcheck disable=SC2086
      "$v/bin/pip" install -q ${REQS[$fam]}
    done ;;
  train)
    "$VENV_ROOT/venv-fastapi/bin/python" train.py
    "$VENV_ROOT/venv-mlflow/bin/python" mlflow_save.py
    "$LOOPLINE_VENV/bin/python" save_loopline.py ;;
  inproc)
    mkdir -p "$RESULTS"
    "$VENV_ROOT/venv-fastapi/bin/python" -W ignore inproc.py "$RESULTS/inproc.json"
    "$LOOPLINE_VENV/bin/python" inproc_loopline.py "$RESULTS/inproc_loopline.json" ;;
  bench)
    mkdir -p "$RESULTS"
    "$PY" ab_bench.py --peers "$PEERS" --models "$MODELS" --batches "$BATCHES" \
        --conc "$CONC" --duration "$DURATION" --rounds "${ROUNDS:-2}" --out "$RESULTS/ab.jsonl" ;;
  report)
    "$PY" summarize_ab.py "$RESULTS" ab.jsonl ;;
  *) echo "usage: $0 setup|train|inproc|bench|report" >&2; exit 2 ;;
esac

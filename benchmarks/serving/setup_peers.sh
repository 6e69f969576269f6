#!/usr/bin/env bash
# Peers of issue 12, each in its own throwaway venv under $VENV_ROOT (never the project venv),
# plus the load generators: wrk (HTTP/1.1, JSON and binary bodies) and h2load (gRPC over h2c).
#
#   bash setup_peers.sh [mlserver] [pytriton] [fastapi] [tools]     (default: all four)
#
# MLServer 1.7.1 + uvloop 0.21: uvloop 0.22+ crashes MLServer's parallel workers
# (SeldonIO/MLServer#2286). PyTriton 0.7 needs numpy<2, so it cannot share a venv with the
# scikit-learn 1.9.1 / numpy 2.4.6 of the other peers; its models are refitted there from the
# same data and seeds (train.py), and check_peers.py compares the answers.
set -euo pipefail
VENV_ROOT="${VENV_ROOT:-/tmp/loopline-bench/venvs}"
PY="${PYTHON:-python3.11}"
SK="scikit-learn==1.9.1 numpy==2.4.6"
mk() { [ -x "$VENV_ROOT/$1/bin/python" ] || "$PY" -m venv "$VENV_ROOT/$1"; "$VENV_ROOT/$1/bin/pip" install -q --upgrade pip; }
what="${*:-mlserver pytriton fastapi tools}"
for w in $what; do
  case "$w" in
    mlserver) mk venv-mlserver
      "$VENV_ROOT/venv-mlserver/bin/pip" install -q "mlserver==1.7.1" "mlserver-sklearn==1.7.1" \
        "uvloop==0.21.0" $SK ;;
    pytriton) mk venv-pytriton
      "$VENV_ROOT/venv-pytriton/bin/pip" install -q "nvidia-pytriton==0.7.0" joblib \
        "scikit-learn==1.9.1" "numpy<2" ;;
    fastapi) mk venv-fastapi
      "$VENV_ROOT/venv-fastapi/bin/pip" install -q "fastapi==0.165.0" "uvicorn[standard]==0.54.0" \
        "orjson==3.13.0" "pandas==3.1.1" joblib $SK ;;
    tools)
      command -v wrk >/dev/null && command -v h2load >/dev/null || {
        apt-get update -qq && apt-get install -y -qq wrk nghttp2-client; } ;;
    *) echo "usage: $0 [mlserver] [pytriton] [fastapi] [tools]" >&2; exit 2 ;;
  esac
done

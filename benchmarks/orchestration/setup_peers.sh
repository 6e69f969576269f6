#!/usr/bin/env bash
# The orchestration peers, each in its own venv (their pins conflict with loopline's and
# with each other's): Prefect 3 and Dagster. kfp.local runs in the project venv
# (`.venv/bin/pip install -e '.[bench-kfp]'`).
#
#   bash benchmarks/orchestration/setup_peers.sh [VENVS_DIR]
#
# VENVS_DIR defaults to $LOOPLINE_PEER_VENVS or /tmp/loopline-orchestration-peers. Then:
#
#   .venv/bin/python benchmarks/orchestration/bench.py \
#       --prefect-python VENVS_DIR/prefect/bin/python --dagster-python VENVS_DIR/dagster/bin/python
#
# PYTHON picks the interpreter (default python3.11, the project venv's version, so every
# engine runs on the same Python).
set -euo pipefail

VENVS="${1:-${LOOPLINE_PEER_VENVS:-/tmp/loopline-orchestration-peers}}"
PY="${PYTHON:-python3.11}"
PREFECT_SPEC="${PREFECT_SPEC:-prefect>=3,<4}"
DAGSTER_SPEC="${DAGSTER_SPEC:-dagster>=1.9,<2}"

make_venv() {
    local name="$1"
    shift
    if [ ! -x "$VENVS/$name/bin/python" ]; then
        "$PY" -m venv "$VENVS/$name"
    fi
    "$VENVS/$name/bin/python" -m pip install --quiet --upgrade pip
    "$VENVS/$name/bin/python" -m pip install --quiet "$@"
}

mkdir -p "$VENVS"
make_venv prefect "$PREFECT_SPEC"
make_venv dagster "$DAGSTER_SPEC"

"$VENVS/prefect/bin/python" -c 'import prefect; print("prefect", prefect.__version__)'
"$VENVS/dagster/bin/python" -c 'import dagster; print("dagster", dagster.__version__)'
echo "peer venvs ready under $VENVS"

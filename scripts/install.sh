#!/usr/bin/env bash
# Install s2s into ./.venv: a CPU build of torch first (a plain `pip install torch` would pull a
# multi-GB CUDA build), then the project with its test extras. Safe to run again: it only adds what
# is missing.
#   PYTHON=python3.11 bash scripts/install.sh        # choose the interpreter
#   TORCH_SPEC="torch==2.13.0" bash scripts/install.sh   # choose the torch build
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
export PIP_DISABLE_PIP_VERSION_CHECK=1

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "install: $torch_spec" >&2
    # On the project's machines this is a local CPU wheel. Elsewhere, for a CPU-only build, run
    # first: .venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    pip install -q "$torch_spec"
fi
echo "install: s2s and its dependencies" >&2
pip install -q -e ".[test]"
.venv/bin/s2s --version >&2

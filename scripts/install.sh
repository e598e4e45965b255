#!/usr/bin/env bash
# Install s2s into ./.venv: torch first, then the project with its test extras, then the man pages into
# .venv/share/man (so `man s2s` finds them once .venv/bin is on PATH). Safe to run again: it only adds
# what is missing.
#
#   TORCH=cpu  bash scripts/install.sh   # the default: a CPU-only build of torch (about 200 MB)
#   TORCH=cuda bash scripts/install.sh   # PyPI's default build, with CUDA (several GB; for a GPU)
#   TORCH=keep bash scripts/install.sh   # install no torch: use the one already in .venv
#   PYTHON=python3.11 bash scripts/install.sh            # choose the interpreter
#   TORCH_SPEC="torch==2.13.0" bash scripts/install.sh   # choose the torch version
#
# TORCH=cpu looks for the wheel on this machine first (pip's --find-links, no network: how the project's
# own machines install it in seconds), then in PyTorch's CPU index. A plain `pip install torch` would
# pull the multi-GB CUDA build even on a machine without a GPU; on a machine with one, use TORCH=cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
torch_kind=${TORCH:-cpu}
cpu_index=https://download.pytorch.org/whl/cpu
export PIP_DISABLE_PIP_VERSION_CHECK=1

case "$torch_kind" in
    cpu|cuda|keep) ;;
    *) echo "install: TORCH must be cpu, cuda or keep, not '$torch_kind'" >&2; exit 2 ;;
esac

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
have_torch() { .venv/bin/python -c "import torch" 2>/dev/null; }

if [ "$torch_kind" = keep ]; then
    have_torch || { echo "install: TORCH=keep but .venv has no torch; install one first" >&2; exit 1; }
elif ! have_torch; then
    echo "install: $torch_spec ($torch_kind build)" >&2
    if [ "$torch_kind" = cuda ]; then
        pip install -q "$torch_spec"
    elif pip install -q --no-index --no-deps "$torch_spec" 2>/dev/null; then
        pip install -q "$torch_spec"  # a local wheel: now its dependencies, from the usual index
    else
        pip install -q "$torch_spec" --index-url "$cpu_index" --extra-index-url https://pypi.org/simple
    fi
fi
echo "install: s2s and its dependencies" >&2
pip install -q -e ".[test]"
mkdir -p .venv/share/man/man1
cp man/*.1 .venv/share/man/man1/
.venv/bin/python -c "import torch; print('install: torch', torch.__version__,
      '(CPU only)' if torch.version.cuda is None else f'(CUDA {torch.version.cuda})')" >&2
.venv/bin/s2s --version >&2

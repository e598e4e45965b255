#!/usr/bin/env bash
# Install (see install.sh) and run the whole test suite: unit, CLI, pipeline, learning and man-page
# tiers. Extra arguments go to pytest (e.g. `bash scripts/test.sh -x -k beam`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$status"

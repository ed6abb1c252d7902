#!/usr/bin/env bash
# Runs ON THE RUNNER: installs this checkout's agent for the runner's own checks and the
# restore test, with nothing unpinned: the dependencies exactly as scripts/server/
# requirements.lock has them and the build backend as scripts/build-requirements.lock has
# it, every file checked against its hash (wheels only), then the agent with --no-deps.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
"$python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  --only-binary ':all:' --requirement "$here/server/requirements.lock" \
  --requirement "$here/build-requirements.lock"
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
  "$here/.."

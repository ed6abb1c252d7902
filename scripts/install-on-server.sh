#!/usr/bin/env bash
# Runs ON THE RUNNER: builds this checkout's wheel, copies it and the server scripts to the
# production server, and installs them there (idempotently) with server/install-agent.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$here/.."
wheel="$(ls "$work"/dist/backup_agent-*.whl)"
target="${PRODUCTION_USER}@${PRODUCTION_HOST}"
staging="/tmp/backup-agent-install"
ssh -o BatchMode=yes "$target" "rm -rf $staging && mkdir -p $staging/scripts"
scp -o BatchMode=yes -q "$wheel" "$target:$staging/"
scp -o BatchMode=yes -q "$here"/server/*.sh "$target:$staging/scripts/"
ssh -o BatchMode=yes "$target" \
  "bash $staging/scripts/install-agent.sh $staging/$(basename "$wheel") $staging/scripts"

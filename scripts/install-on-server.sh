#!/usr/bin/env bash
# Runs ON THE RUNNER: builds this checkout's wheel (its build backend hash-checked from
# scripts/build-requirements.lock), and installs it on the production server with
# server/install-agent.sh, which takes the dependencies from server/requirements.lock with
# their hashes checked.
#
# One SSH session does it all: the wheel, the server scripts and the lock travel as a tar
# stream on its standard input into a fresh private directory that `mktemp -d` makes on the
# server (mode 0700, a name nobody can predict or create first), removed when the session
# ends, whatever happened. Reads PRODUCTION_HOST, PRODUCTION_USER and optionally
# INSTALL_PREFIX (default /opt/dorami/backup-agent) and INSTALL_WAL_STREAM=yes (also install
# the `wal stream` service: install-agent.sh --with-wal-stream).
set -euo pipefail

if [ -n "${AGE_IDENTITY:-}" ] || [ -n "${BACKUP_AGE_IDENTITY:-}" ]; then
  echo "::error::install-on-server.sh refuses to run with an age private key in its environment" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The same checkout always builds the same wheel (zip timestamps from the commit), so an
# unchanged agent is not reinstalled.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$here/.." log -1 --format=%ct 2>/dev/null \
  || echo 315532800)}"
export SOURCE_DATE_EPOCH
python3 -m venv "$work/build"
"$work/build/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes --only-binary ':all:' --requirement "$here/build-requirements.lock"
"$work/build/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
  --no-build-isolation --wheel-dir "$work/payload" "$here/.."
mkdir "$work/payload/scripts"
cp "$here"/server/*.sh "$here/server/requirements.lock" "$work/payload/scripts/"
wheel="$(basename "$(ls "$work"/payload/backup_agent-*.whl)")"
wal_stream=""
if [ "${INSTALL_WAL_STREAM:-no}" = yes ]; then
  wal_stream=yes
fi

# What the server runs: arguments $1 (the wheel's name), $2 (the prefix, or empty) and $3
# ("yes": install the `wal stream` service too).
read -r -d '' on_server <<'SH' || true
set -euo pipefail
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
tar -x -f - -C "$staging" --no-same-owner --no-same-permissions
bash "$staging/scripts/install-agent.sh" ${3:+--with-wal-stream} "$staging/$1" "$staging/scripts" ${2:+"$2"}
SH

quote() {  # one single-quoted word for the remote login shell, whatever it holds
  local quoted="${1//\'/\'\\\'\'}"
  printf "'%s'" "$quoted"
}

# What the server prints (pip's output, errors) goes to standard error with workflow
# commands switched off: in the job log it is text, never an annotation.
tar -c -f - -C "$work/payload" . \
  | "$here/without-workflow-commands.sh" \
      ssh -o BatchMode=yes -o StrictHostKeyChecking=yes "${PRODUCTION_USER}@${PRODUCTION_HOST}" \
      "bash -c $(quote "$on_server") install-on-server $(quote "$wheel") $(quote "${INSTALL_PREFIX:-}") $(quote "$wal_stream")" \
  >&2

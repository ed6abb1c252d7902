#!/usr/bin/env bash
# Runs ON THE RUNNER: remote.sh SCRIPT [ARGS...] runs /opt/dorami/backup-agent/scripts/SCRIPT
# on the production server over SSH, sending the S3 secrets on standard input.
#
# Reads PRODUCTION_HOST, PRODUCTION_USER and, unless UPLOAD=false, S3_BUCKET,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and optionally AWS_REGION, S3_PREFIX) from its
# environment. printf is a shell builtin: the values never appear in any process's argv.
set -euo pipefail

remote_dir="${REMOTE_SCRIPTS_DIR:-/opt/dorami/backup-agent/scripts}"
script="$1"
shift

secrets() {
  if [ "${UPLOAD:-true}" = "false" ]; then
    return 0
  fi
  local name
  for name in S3_BUCKET S3_PREFIX AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION; do
    if [ -n "${!name:-}" ]; then
      printf '%s=%s\n' "$name" "${!name}"
    fi
  done
}

secrets | ssh -o BatchMode=yes -o StrictHostKeyChecking=yes \
  "${PRODUCTION_USER}@${PRODUCTION_HOST}" "$remote_dir/$script" "$@"

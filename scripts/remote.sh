#!/usr/bin/env bash
# Runs ON THE RUNNER: remote.sh SCRIPT [ARGS...] runs /opt/dorami/backup-agent/scripts/SCRIPT
# on the production server over SSH, sending the S3 secrets on standard input.
#
# Reads PRODUCTION_HOST, PRODUCTION_USER and, unless UPLOAD=false, S3_BUCKET,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and optionally AWS_REGION, S3_PREFIX) from its
# environment; and AGE_IDENTITY (an age key file's content) when set, for restore tests of
# encrypted backups; and TRUSTED_SIGNING_KEYS (public keys) when set. printf is a shell builtin: the values never appear in any process's argv.
set -euo pipefail

remote_dir="${REMOTE_SCRIPTS_DIR:-/opt/dorami/backup-agent/scripts}"
script="$1"
shift

age_identity() {
  # Only the AGE-SECRET-KEY-1… words of the key file, comma separated, on one line.
  local - word keys=""
  set -f
  for word in ${AGE_IDENTITY:-}; do
    case "$word" in
      AGE-SECRET-KEY-1*) keys="${keys:+$keys,}$word" ;;
    esac
  done
  if [ -n "$keys" ]; then
    printf 'AGE_IDENTITY=%s\n' "$keys"
  fi
}

secrets() {
  age_identity
  if [ -n "${TRUSTED_SIGNING_KEYS:-}" ]; then
    printf 'TRUSTED_SIGNING_KEYS=%s\n' "$TRUSTED_SIGNING_KEYS"
  fi
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

#!/usr/bin/env bash
# Runs ON THE RUNNER: remote.sh SCRIPT [ARGS...] runs /opt/dorami/backup-agent/scripts/SCRIPT
# on the production server over SSH, sending the S3 secrets on standard input.
#
# Reads PRODUCTION_HOST, PRODUCTION_USER and, unless UPLOAD=false, S3_BUCKET, S3_PREFIX,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (a role's short-lived
# credentials) and AWS_REGION from its environment; and TRUSTED_SIGNING_KEYS (public keys)
# when set. printf is a shell builtin: the values never appear in any process's argv.
#
# The server's output is plain text in the job log: ssh runs under
# without-workflow-commands.sh. The age private key never goes to the server: remote.sh refuses to run at all when
# AGE_IDENTITY or BACKUP_AGE_IDENTITY is in its environment (the restore test of encrypted
# backups runs on the runner, scripts/restore-test-on-runner.sh).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
remote_dir="${REMOTE_SCRIPTS_DIR:-/opt/dorami/backup-agent/scripts}"
if [ "$#" -eq 0 ]; then
  echo "usage: remote.sh SCRIPT [ARGS...]" >&2
  exit 2
fi
if [ -n "${AGE_IDENTITY:-}" ] || [ -n "${BACKUP_AGE_IDENTITY:-}" ]; then
  echo "::error::remote.sh refuses to run with an age private key in its environment: it must never reach the server" >&2
  exit 2
fi

# One word for the remote shell, whatever it holds: sshd hands the command line to the
# user's login shell, so every argument is single-quoted (POSIX: sh, dash and bash alike).
quote() {
  local quoted="${1//\'/\'\\\'\'}"
  printf "'%s'" "$quoted"
}

secrets() {
  if [ -n "${TRUSTED_SIGNING_KEYS:-}" ]; then
    printf 'TRUSTED_SIGNING_KEYS=%s\n' "$TRUSTED_SIGNING_KEYS"
  fi
  if [ "${UPLOAD:-true}" = "false" ]; then
    return 0
  fi
  local name
  for name in S3_BUCKET S3_PREFIX AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
      AWS_REGION; do
    if [ -n "${!name:-}" ]; then
      printf '%s=%s\n' "$name" "${!name}"
    fi
  done
}

command_line="$(quote "$remote_dir/$1")"
shift
for argument in "$@"; do
  command_line+=" $(quote "$argument")"
done

# Everything the server prints reaches the job log with workflow commands switched off, so
# a `::error::` line in it is just text. The server's standard output stays this script's
# standard output (the JSON report): send it to a file, not through a pipe into the log.
secrets | "$here/without-workflow-commands.sh" \
  ssh -o BatchMode=yes -o StrictHostKeyChecking=yes "${PRODUCTION_USER}@${PRODUCTION_HOST}" \
  "$command_line"

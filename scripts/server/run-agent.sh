#!/usr/bin/env bash
# Runs ON THE SERVER, over SSH: `run-agent.sh COMMAND [ARGS...]`.
#
# Secrets (S3 bucket, AWS keys, the public TRUSTED_SIGNING_KEYS) arrive as KEY=VALUE lines
# on standard input, never on the command line (which `ps` and the SSH logs would show).
# Database credentials come from the server's own env file. Only known names are accepted;
# an age private key is refused outright: it never belongs on the server (the restore test
# of encrypted backups runs on the GitHub runner, from S3).
#
# The signing key install-agent.sh made (PREFIX/signing-key.pem, beside this script's
# directory) signs the backups unless the env file names another SIGNING_KEY_FILE.
set -euo pipefail

agent="${BACKUP_AGENT:-/opt/dorami/backup-agent/bin/backup-agent}"
env_file="${BACKUP_ENV_FILE:-/opt/dorami/.env.production}"
installed_key="$(cd "$(dirname "$0")/.." && pwd)/signing-key.pem"

if [ "$#" -eq 0 ]; then
  echo "usage: run-agent.sh COMMAND [ARGS...] (secrets as KEY=VALUE lines on stdin)" >&2
  exit 2
fi
case "$1" in
  backup|base-backup|verify|list|status) ;;
  *) echo "run-agent.sh: refusing command '$1' (allowed: backup, base-backup, verify, list, status)" >&2
     exit 2 ;;
esac

if [ ! -t 0 ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    name="${line%%=*}"
    value="${line#*=}"
    case "$name" in
      S3_BUCKET|S3_PREFIX|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|\
      AWS_REGION|AWS_DEFAULT_REGION|AWS_ENDPOINT_URL_S3|TRUSTED_SIGNING_KEYS)
        [ -n "$value" ] && export "$name=$value" ;;
      AGE_IDENTITY|AGE_IDENTITY_FILE)
        echo "run-agent.sh: refusing $name on standard input: the age private key must never reach the server" >&2
        exit 2 ;;
      "") ;;
      *) echo "run-agent.sh: ignoring unexpected variable '$name'" >&2 ;;
    esac
  done
fi

if [ -z "${SIGNING_KEY_FILE:-}" ] && [ -f "$installed_key" ] \
    && ! grep -Eqs '^[[:space:]]*(export[[:space:]]+)?SIGNING_KEY_FILE=' "$env_file"; then
  export SIGNING_KEY_FILE="$installed_key"
fi

exec "$agent" "$@" --env-file "$env_file"

#!/usr/bin/env bash
# Runs ON THE RUNNER: the weekly restore test, of the copy a disaster needs (S3), where the
# age private key may be. restore-test-on-runner.sh [REPORT.json]
#
#  1. pick the newest complete backup in S3 (the same pick as `latest`: only
#     a TRUSTED_SIGNING_KEYS signature counts) and its server's major version
#     from its signed manifest (RESTORE_TEST_POSTGRES_MAJOR overrides it); no trusted key,
#     or no signed backup: exit 8 before any container starts;
#  2. start a throwaway postgres:<major> container with no network at all;
#  3. `backup-agent verify s3://… --restore-test` that exact object: prove it (checksum,
#     signature, age, gzip, closing line, statements), restore it into a scratch database
#     (the agent executes it over the container's socket; no psql runs), and compare every
#     table's row count with the manifest;
#  4. remove the container, whatever happened.
#
# Reads S3_BUCKET, S3_PREFIX, the workflow's AWS credentials, AGE_IDENTITY (encrypted
# backups: the key stays in this process; only SQL goes into the container) and
# TRUSTED_SIGNING_KEYS (required: the runner holds no signing key, so without it every
# backup is refused, exit 8). Never talks to the production server. The backup's data
# passes through the runner (and its container), both discarded when the job ends.
set -euo pipefail

report="${1:-restore-test.json}"
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
agent="${BACKUP_AGENT:-backup-agent}"
container="${RESTORE_TEST_CONTAINER:-backup-restore-test}"
work="$(mktemp -d)"
trap 'docker rm --force "$container" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# Its annotations (a backup passed over, a refusal) go to the job log; its answer stays here.
pick=0
"$python" "$here/runner_checks.py" newest-backup > "$work/newest" || pick=$?
grep '^::' "$work/newest" || true
[ "$pick" -eq 0 ] || exit "$pick"
uri="$(sed -n 's/^uri=//p' "$work/newest")"
major="${RESTORE_TEST_POSTGRES_MAJOR:-$(sed -n 's/^postgres-major=//p' "$work/newest")}"
case "$major" in
  ''|*[!0-9]*)  # the value itself is not echoed: a newline in it could forge an annotation
    echo "::error::not a PostgreSQL major version: RESTORE_TEST_POSTGRES_MAJOR must be a number" >&2
    exit 2 ;;
esac
echo "restore test: $uri into postgres:$major"

# No network: the container is reached with `docker exec` and through its socket directory,
# mounted from this job's private work directory (the agent executes the restore itself,
# over the socket); nothing restored into it can reach anything. Trust authentication, on a
# database that lives for this job only.
socket="$work/socket"
mkdir -m 0777 "$socket"  # the container's postgres user makes its socket here; $work is 0700
docker run --detach --name "$container" --network none \
  --volume "$socket:/var/run/postgresql" \
  --env POSTGRES_HOST_AUTH_METHOD=trust "postgres:$major" >/dev/null
# TCP on 127.0.0.1 inside the container: the image's first-start server listens on its
# socket only, so this waits for the real one.
for _ in $(seq 1 90); do
  if docker exec "$container" pg_isready --quiet --host 127.0.0.1 \
      --port "${POSTGRES_PORT:-5432}"; then
    break
  fi
  sleep 1
done

export POSTGRES_HOST="${POSTGRES_HOST:-$socket}" POSTGRES_USER="${POSTGRES_USER:-postgres}"
export BACKUP_DIR="$work"  # where the S3 object is spooled while it is proven
status=0
"$agent" verify "$uri" --restore-test --json --container "$container" > "$report" || status=$?
"$python" "$here/runner_checks.py" summarize-restore-test "$report" || true
exit "$status"

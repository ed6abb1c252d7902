#!/usr/bin/env bash
# Runs ON THE RUNNER: the weekly point-in-time drill, of the copy a disaster needs (S3),
# where the age private key may be. drill-on-runner.sh [REPORT.json]
#
#  1. the newest base backup in S3 whose descriptor a TRUSTED_SIGNING_KEYS key signed
#     names the server's major (so a planted descriptor cannot choose the image); no
#     trusted key or no signed base backup: exit 8 before anything is built;
#  2. builds scripts/drill.Dockerfile on postgres:<that major> (its own binaries, amcheck
#     included; the agent installed hash-checked);
#  3. runs `backup-agent drill --json` in it: the audit of the whole archive, then three
#     random moments recovered from S3 and proven (exact to the commit, opened,
#     pg_amcheck, the commit marker); its step summary is appended to this job's;
#  4. the container is removed when the drill ends (--rm), whatever happened.
#
# Reads S3_BUCKET, S3_PREFIX, the workflow's AWS credentials, AGE_IDENTITY (encrypted
# archives) and TRUSTED_SIGNING_KEYS; they go into the container by name (`--env NAME`),
# never on a command line. Unlike the restore test's container this one has a network: the
# agent in it reads S3 while the servers replay. The servers themselves listen on no TCP
# address (a socket in a private directory only), archive nothing and run no command of the
# backup's configuration (see "Restore to a point in time"). Never talks to the production
# server; the archive's data passes through the runner, discarded when the job ends.
set -euo pipefail

report="${1:-drill.json}"
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
image="${DRILL_IMAGE:-backup-agent-drill}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Its annotations (a refusal) go to the job log; its answer stays here.
pick=0
"$python" "$here/runner_checks.py" newest-base-backup > "$work/newest" || pick=$?
grep '^::' "$work/newest" || true
[ "$pick" -eq 0 ] || exit "$pick"
major="$(sed -n 's/^postgres-major=//p' "$work/newest")"
case "$major" in
  ''|*[!0-9]*)
    echo "::error::the newest base backup's descriptor names no PostgreSQL major version" >&2
    exit 2 ;;
esac
echo "drill: the newest base backup is PostgreSQL $major: drilling in postgres:$major"

docker build --quiet --tag "$image:$major" --build-arg "POSTGRES_MAJOR=$major" \
  --file "$here/drill.Dockerfile" "$here/.." >/dev/null
summary="$work/summary.md"
touch "$summary"
status=0
docker run --rm --name "${DRILL_CONTAINER:-backup-agent-drill}" \
  --env S3_BUCKET --env S3_PREFIX --env AWS_ENDPOINT_URL_S3 --env AWS_REGION \
  --env AWS_DEFAULT_REGION --env AWS_ACCESS_KEY_ID --env AWS_SECRET_ACCESS_KEY \
  --env AWS_SESSION_TOKEN --env AGE_IDENTITY --env TRUSTED_SIGNING_KEYS \
  --env "PG_BINDIR=/usr/lib/postgresql/$major/bin" --env GITHUB_STEP_SUMMARY=/summary.md \
  --volume "$summary:/summary.md" \
  "$image:$major" drill --json --run-as postgres > "$report" || status=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$summary" >> "$GITHUB_STEP_SUMMARY"; fi
"$python" "$here/runner_checks.py" summarize-drill "$report" || true
exit "$status"

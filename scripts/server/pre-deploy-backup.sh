#!/usr/bin/env bash
# Runs ON THE SERVER before a deploy: a backup to S3 and local disk, falling back to the
# local copy alone when S3 is unavailable (the agent keeps the local backup and exits 5).
# Prints `outcome=s3|local-only` last and exits 0 for both; any other failure is passed on
# (the deploy workflow then warns and deploys anyway, as the guide requires).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
"$here/run-agent.sh" backup --json
status=$?
case "$status" in
  0) echo "outcome=s3" ;;
  5) echo "pre-deploy-backup: S3 unavailable; the local backup was kept" >&2
     echo "outcome=local-only" ;;
  *) echo "pre-deploy-backup: the backup failed (exit $status)" >&2
     exit "$status" ;;
esac

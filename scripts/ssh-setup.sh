#!/usr/bin/env bash
# Runs ON THE RUNNER: installs the deploy key and the PINNED host key for the production
# server (from secrets), so ssh never trusts a host key it has not been told about.
set -euo pipefail

if [ -z "${SSH_KEY:-}" ] || [ -z "${KNOWN_HOSTS:-}" ]; then
  echo "::error::PRODUCTION_SSH_KEY and PRODUCTION_KNOWN_HOSTS secrets are required (ssh-keyscan the host once, check its fingerprint, store the line)"
  exit 1
fi
install -d -m 0700 "$HOME/.ssh"
umask 077
printf '%s\n' "$SSH_KEY" > "$HOME/.ssh/id_ed25519"
printf '%s\n' "$KNOWN_HOSTS" > "$HOME/.ssh/known_hosts"

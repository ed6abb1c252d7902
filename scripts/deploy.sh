#!/usr/bin/env bash
# PLACEHOLDER: your deployment goes here (pull images, `docker compose up -d`, migrations...).
# It runs on the runner after the pre-deployment backup, with SSH to the server set up, e.g.
#   ssh "${PRODUCTION_USER}@${PRODUCTION_HOST}" 'cd /opt/dorami && docker compose pull && docker compose up -d'
set -euo pipefail
echo "::warning::scripts/deploy.sh is a placeholder: put your deployment steps in it"

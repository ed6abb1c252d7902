#!/usr/bin/env bash
# Runs ON THE SERVER: install-agent.sh WHEEL SCRIPTS_DIR [PREFIX]
#
# Installs a pinned backup-agent wheel into its own virtualenv at PREFIX (default
# /opt/dorami/backup-agent) and the server scripts into PREFIX/scripts. Idempotent: the
# same wheel installed twice changes nothing the second time.
set -euo pipefail

wheel="$1"
scripts="$2"
prefix="${3:-/opt/dorami/backup-agent}"
marker="$prefix/.installed-wheel.sha256"
python="${PYTHON:-python3}"

digest="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [ -x "$prefix/bin/backup-agent" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$digest" ]; then
  echo "install-agent: $(basename "$wheel") already installed in $prefix: nothing changed"
else
  [ -x "$prefix/bin/python" ] || "$python" -m venv "$prefix"
  "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps "$wheel"
  "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
  echo "$digest" > "$marker"
  echo "install-agent: installed $(basename "$wheel") into $prefix"
fi

mkdir -p "$prefix/scripts"
for script in "$scripts"/*.sh; do
  target="$prefix/scripts/$(basename "$script")"
  if ! cmp -s "$script" "$target"; then
    install -m 0755 "$script" "$target"
    echo "install-agent: updated $target"
  fi
done
"$prefix/bin/backup-agent" --version

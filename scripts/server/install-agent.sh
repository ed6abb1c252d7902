#!/usr/bin/env bash
# Runs ON THE SERVER: install-agent.sh WHEEL SCRIPTS_DIR [PREFIX]
#
# Installs a backup-agent wheel into its own virtualenv at PREFIX (default
# /opt/dorami/backup-agent) and the server scripts into PREFIX/scripts. The dependencies are
# exactly those of SCRIPTS_DIR/requirements.lock, every file checked against the lock's
# SHA-256 hashes (pip --require-hashes, wheels only: no setup.py of a dependency runs), and
# the wheel itself goes in with --no-deps, so nothing unpinned is ever fetched. Idempotent:
# the same wheel and lock installed twice change nothing the second time.
#
# The first install also makes the server's signing key, PREFIX/signing-key.pem (mode 0600,
# never replaced): run-agent.sh signs every backup with it, and restore and verify trust it
# on this server. Its public key is printed each time: the BACKUP_TRUSTED_SIGNING_KEYS secret.
set -euo pipefail

wheel="$1"
scripts="$2"
prefix="${3:-/opt/dorami/backup-agent}"
lock="$scripts/requirements.lock"
marker="$prefix/.installed-wheel.sha256"
python="${PYTHON:-python3}"

if [ ! -f "$lock" ]; then
  echo "install-agent: $lock is missing: refusing to install unpinned dependencies" >&2
  exit 2
fi
digest="$(cat "$wheel" "$lock" | sha256sum | cut -d' ' -f1)"
if [ -x "$prefix/bin/backup-agent" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$digest" ]; then
  echo "install-agent: $(basename "$wheel") already installed in $prefix: nothing changed"
else
  [ -x "$prefix/bin/python" ] || "$python" -m venv "$prefix"
  pip() { "$prefix/bin/python" -m pip --quiet --disable-pip-version-check "$@"; }
  # Without --no-deps: in hash-checking mode pip refuses any dependency the lock lacks.
  pip install --require-hashes --only-binary ':all:' --requirement "$lock"
  pip install --no-deps --force-reinstall "$wheel"
  pip check
  echo "$digest" > "$marker"
  echo "install-agent: installed $(basename "$wheel") into $prefix (dependencies hash-checked)"
fi

mkdir -p "$prefix/scripts"
for script in "$scripts"/*.sh; do
  target="$prefix/scripts/$(basename "$script")"
  if ! cmp -s "$script" "$target"; then
    install -m 0755 "$script" "$target"
    echo "install-agent: updated $target"
  fi
done
signing_key="$prefix/signing-key.pem"
if [ ! -f "$signing_key" ]; then
  (umask 077 && "$prefix/bin/backup-agent" keygen --signing "$signing_key" 2>/dev/null \
     | tail -n 1 > "$prefix/signing-key.pub")
  echo "install-agent: created the signing key $signing_key"
fi
echo "install-agent: backups are signed with $signing_key; its public key, for the" \
     "BACKUP_TRUSTED_SIGNING_KEYS secret: $(cat "$prefix/signing-key.pub" 2>/dev/null \
     || echo "(not at hand: backup-agent doctor prints it)")"
"$prefix/bin/backup-agent" --version

#!/usr/bin/env bash
# Runs ON THE SERVER: install-agent.sh [--with-wal-stream] WHEEL SCRIPTS_DIR [PREFIX]
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
#
# With --with-wal-stream it also installs what runs `backup-agent wal stream` (point-in-time
# recovery) as `backup-agent wal setup --print-service` describes it for the env file
# BACKUP_ENV_FILE (default /opt/dorami/.env.production): on a host, the systemd unit
# backup-agent-wal.service in SYSTEMD_UNIT_DIR (default /etc/systemd/system; through `sudo -n`
# when that is not writable, else it says what to run as root), enabled, and restarted
# when it or the agent changed; with POSTGRES_CONTAINER, the sidecar's compose file and its
# build context (this wheel and the lock) in PREFIX/wal-stream, and the command that starts
# it. Run `backup-agent wal setup --yes` first (the role, the slot).
set -euo pipefail

with_wal_stream=no
if [ "${1:-}" = "--with-wal-stream" ]; then
  with_wal_stream=yes
  shift
fi
wheel="$1"
scripts="$2"
prefix="${3:-/opt/dorami/backup-agent}"
lock="$scripts/requirements.lock"
marker="$prefix/.installed-wheel.sha256"
python="${PYTHON:-python3}"
agent_changed=no

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
  agent_changed=yes
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

if [ "$with_wal_stream" = yes ]; then
  env_file="${BACKUP_ENV_FILE:-/opt/dorami/.env.production}"
  stream_dir="$prefix/wal-stream"
  mkdir -p "$stream_dir"
  # The stream signs WAL as run-agent.sh signs backups: with this key unless the env file
  # names another.
  key=()
  if [ -z "${SIGNING_KEY_FILE:-}" ] && [ -f "$signing_key" ] \
      && ! grep -Eqs '^[[:space:]]*(export[[:space:]]+)?SIGNING_KEY_FILE=' "$env_file"; then
    key=("SIGNING_KEY_FILE=$signing_key")
  fi
  service="$(env "${key[@]}" "$prefix/bin/backup-agent" --quiet wal setup --print-service \
               --env-file "$env_file")"
  case "$service" in
    "[Unit]"*)
      unit_dir="${SYSTEMD_UNIT_DIR:-/etc/systemd/system}"
      unit="$unit_dir/backup-agent-wal.service"
      printf '%s\n' "$service" > "$stream_dir/backup-agent-wal.service"
      if [ -w "$unit_dir" ]; then
        root=()
      elif sudo -n true 2>/dev/null; then
        root=(sudo -n)
      else
        echo "install-agent: wrote $stream_dir/backup-agent-wal.service; as root run:" \
             "install -m 0644 $stream_dir/backup-agent-wal.service $unit_dir/ &&" \
             "systemctl daemon-reload && systemctl enable --now backup-agent-wal.service"
        exit 0
      fi
      if ! cmp -s "$stream_dir/backup-agent-wal.service" "$unit"; then
        "${root[@]}" install -m 0644 "$stream_dir/backup-agent-wal.service" "$unit"
        "${root[@]}" systemctl daemon-reload
        agent_changed=yes
        echo "install-agent: installed $unit"
      fi
      "${root[@]}" systemctl enable --quiet backup-agent-wal.service
      if [ "$agent_changed" = yes ]; then
        "${root[@]}" systemctl restart backup-agent-wal.service
        echo "install-agent: (re)started backup-agent-wal.service (wal stream)"
      else
        "${root[@]}" systemctl start backup-agent-wal.service
        echo "install-agent: backup-agent-wal.service (wal stream) unchanged, running"
      fi
      ;;
    "# backup-agent's WAL stream"*)
      rm -f "$stream_dir"/backup_agent-*.whl
      cp "$wheel" "$lock" "$stream_dir/"
      printf '%s\n' "$service" > "$stream_dir/compose.yaml"
      echo "install-agent: wrote the WAL stream's sidecar $stream_dir/compose.yaml and its" \
           "build context; start or update it with:" \
           "docker compose -f $stream_dir/compose.yaml up -d --build"
      ;;
    *)
      echo "install-agent: backup-agent wal setup --print-service printed no service" >&2
      exit 1
      ;;
  esac
fi

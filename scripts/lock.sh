#!/usr/bin/env bash
# Regenerates the two hash-checked locks from pyproject.toml (run it after changing the
# dependencies, and commit the result):
#   scripts/server/requirements.lock  the agent's runtime dependencies, for the server and
#                                     the runner (pip install --require-hashes)
#   scripts/build-requirements.lock   the build backend (setuptools) that builds its wheel
# Needs uv (python3 -m pip install uv) and the package index; --universal with every file's
# hash, so one lock serves any Linux, macOS or Windows machine with Python 3.11 or newer.
set -euo pipefail

cd "$(dirname "$0")/.."
uv="${UV:-uv}"
compile=("$uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes
         --no-annotate --custom-compile-command scripts/lock.sh)
"${compile[@]}" pyproject.toml --output-file scripts/server/requirements.lock
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
  | "${compile[@]}" - --output-file scripts/build-requirements.lock

#!/usr/bin/env bash
# Runs ON THE RUNNER: without-workflow-commands.sh COMMAND [ARGS...] runs COMMAND with
# GitHub's workflow commands switched off, so text from the server that COMMAND prints
# cannot start an annotation (`::error::`), mask, group, or anything else of its own.
#
# Before COMMAND it prints `::stop-commands::TOKEN`, TOKEN 32 fresh random hex digits that
# nothing on the server can know; after it, `::TOKEN::`, which switches them back on. Both
# go to standard error, the stream COMMAND's standard error shares, so the order is exact.
# COMMAND's standard output is left where the caller sent it: to a file, or, to show it in
# the log, to standard error too (`without-workflow-commands.sh cat FILE >&2`); never to a
# pipe whose reader prints it after this has switched commands back on.
# Exits with COMMAND's status.
set -uo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: without-workflow-commands.sh COMMAND [ARGS...]" >&2
  exit 2
fi
token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
if [ "${#token}" -ne 32 ]; then
  echo "without-workflow-commands.sh: no random token from /dev/urandom" >&2
  exit 2
fi
printf '::stop-commands::%s\n' "$token" >&2
status=0
"$@" || status=$?
printf '::%s::\n' "$token" >&2
exit "$status"

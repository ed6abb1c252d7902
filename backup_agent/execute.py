"""The one module that starts external processes.

Commands arrive as argv lists built elsewhere; secrets arrive only in `environment`.
A program that does not exist becomes a ToolMissingError with a fix, not a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from backup_agent.errors import ToolMissingError

log = logging.getLogger(__name__)

# Every child still running, so that an interrupted run can stop them all, wherever the
# signal landed (even between starting a child and guarding it).
_running: set[subprocess.Popen[bytes]] = set()


def describe(command: Sequence[str]) -> str:
    """Return a command as a shell-quoted line for logs (argv holds no secrets by design)."""
    return shlex.join(command)


def _missing_program(command: Sequence[str]) -> ToolMissingError:
    program = command[0]
    if program == "docker":
        return ToolMissingError("docker not found on PATH: install the docker CLI, or unset "
                                "POSTGRES_CONTAINER to run the PostgreSQL clients directly")
    return ToolMissingError(
        f"{program} not found: install the PostgreSQL client (the same major version as the "
        "server or newer), set PG_BINDIR to its bin directory, or set POSTGRES_CONTAINER to "
        "run it inside the database container")


def spawn(
    command: Sequence[str],
    *,
    environment: Mapping[str, str],
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start `command` and return the process; raise ToolMissingError if it does not exist."""
    log.debug("running %s", describe(command))
    try:
        process = subprocess.Popen(list(command), env=dict(environment), stdin=stdin,
                                   stdout=stdout, stderr=stderr)
        _running.add(process)
        return process
    except FileNotFoundError:
        raise _missing_program(command) from None
    except PermissionError:
        raise ToolMissingError(f"{command[0]} is not executable: fix its permissions or "
                               "PG_BINDIR") from None


def stop_all_children() -> None:
    """Kill and reap every child this process started that is still running."""
    for process in list(_running):
        if process.poll() is None:
            process.kill()
            process.wait()
        _running.discard(process)
    # A signal can land inside Popen itself, after the fork but before the child is in
    # the registry: on Linux, /proc still knows it as ours.
    for pid in _direct_children():
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _direct_children() -> list[int]:
    """Return the pids whose parent is this process (empty where there is no /proc)."""
    mine = os.getpid()
    children = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(mine):
            children.append(int(entry.name))
    return children


def run(
    command: Sequence[str],
    *,
    environment: Mapping[str, str],
    input_text: str | None = None,
    timeout: float | None = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `command` to completion and return its text output (not checked)."""
    log.debug("running %s", describe(command))
    try:
        return subprocess.run(list(command), env=dict(environment), input=input_text,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise _missing_program(command) from None
    except PermissionError:
        raise ToolMissingError(f"{command[0]} is not executable: fix its permissions or "
                               "PG_BINDIR") from None

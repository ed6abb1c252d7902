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
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from backup_agent.model.errors import ToolMissingError

log = logging.getLogger(__name__)
DEVNULL = subprocess.DEVNULL  # for callers that must not import subprocess themselves

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
                                "POSTGRES_CONTAINER (the database's container) and "
                                "APP_CONTAINERS (the ones a restore stops), whichever is set")
    return ToolMissingError(
        f"{program} not found: install the PostgreSQL client (the same major version as the "
        "server or newer), set PG_BINDIR to its bin directory, or set POSTGRES_CONTAINER to "
        "run it inside the database container")


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent dies


def _die_with_parent() -> Callable[[], None]:
    """Return a preexec function that makes the child get SIGTERM when we die, even by
    SIGKILL (Linux prctl PR_SET_PDEATHSIG): a long-lived child such as pg_receivewal must
    never outlive the agent holding a replication slot. libc is loaded here, before the
    fork; the child only makes one system call."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    command: Sequence[str],
    *,
    environment: Mapping[str, str],
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.PIPE,
    die_with_parent: bool = False,
    owner: tuple[int, int] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` and return the process; raise ToolMissingError if it does not exist.

    With `die_with_parent` the child is sent SIGTERM when this process ends, however it ends.
    `owner` (uid, gid): run it as that user (a server that must own its data directory,
    started by root); its working directory is then / (ours may be closed to it)."""
    log.debug("running %s", describe(command))
    user, group, groups, cwd = _as_owner(owner)
    try:
        process = subprocess.Popen(list(command), env=dict(environment), stdin=stdin,
                                   stdout=stdout, stderr=stderr, user=user, group=group,
                                   extra_groups=groups, cwd=cwd,
                                   preexec_fn=_die_with_parent() if die_with_parent else None)
        _running.add(process)
        return process
    except FileNotFoundError:
        raise _missing_program(command) from None
    except PermissionError:
        raise ToolMissingError(f"{command[0]} is not executable: fix its permissions or "
                               "PG_BINDIR") from None


_Switch = tuple[int | None, int | None, list[int] | None, str | None]


def _as_owner(owner: tuple[int, int] | None) -> _Switch:
    """Popen's user, group, extra_groups and cwd for running as `owner` (None: as we are)."""
    if owner is None or owner == (os.geteuid(), os.getegid()):
        return None, None, None, None
    return owner[0], owner[1], [], "/"


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
    owner: tuple[int, int] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `command` to completion and return its text output (not checked); as `owner`
    (see `spawn`) when given."""
    log.debug("running %s", describe(command))
    user, group, groups, cwd = _as_owner(owner)
    try:
        return subprocess.run(list(command), env=dict(environment), input=input_text,
                              capture_output=True, text=True, timeout=timeout, check=False,
                              user=user, group=group, extra_groups=groups, cwd=cwd)
    except FileNotFoundError:
        raise _missing_program(command) from None
    except PermissionError:
        raise ToolMissingError(f"{command[0]} is not executable: fix its permissions or "
                               "PG_BINDIR") from None


class Child:
    """A running child whose stderr goes to a private temporary file.

    The one owner of a running process's kill, wait and stderr: dump, feed and the psql
    session all hold one.
    """

    def __init__(self, command: Sequence[str], *, environment: Mapping[str, str],
                 stdin: int | IO[bytes] | None = subprocess.DEVNULL,
                 stdout: int | IO[bytes] | None = subprocess.PIPE,
                 die_with_parent: bool = False,
                 owner: tuple[int, int] | None = None) -> None:
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self.process = spawn(command, environment=environment, stdin=stdin, stdout=stdout,
                                 stderr=self._stderr, die_with_parent=die_with_parent,
                                 owner=owner)
        except BaseException:
            self._stderr.close()
            raise

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end; kill it if it outlives `timeout`."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

    def terminate(self, timeout: float) -> int:
        """Ask the child to stop (SIGTERM), wait at most `timeout`, then kill it."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.wait(timeout=timeout)

    def kill(self) -> None:
        """Stop the child at once and reap it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Kill the child if it still runs, and release its pipes and stderr file."""
        self.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._stderr.close()
        _running.discard(self.process)


@contextmanager
def running(command: Sequence[str], *, environment: Mapping[str, str],
            stdin: int | IO[bytes] | None = subprocess.DEVNULL,
            stdout: int | IO[bytes] | None = subprocess.PIPE) -> Iterator[Child]:
    """Run `command` for the duration of the block; kill it if the block fails.

    The block waits for the child itself (to read its exit status); whatever still runs
    when the block ends, normally or not, is killed and reaped.
    """
    child = Child(command, environment=environment, stdin=stdin, stdout=stdout)
    try:
        yield child
    finally:
        child.close()

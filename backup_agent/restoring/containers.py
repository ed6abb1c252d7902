"""Stop the application's containers around the swap, and always start them again."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from backup_agent import execute
from backup_agent.model.errors import RestoreError
from backup_agent.postgres.commands import child_environment

log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 30


def make_stop_command(container: str) -> list[str]:
    return ["docker", "stop", "--time", str(STOP_TIMEOUT_SECONDS), container]


def make_start_command(container: str) -> list[str]:
    return ["docker", "start", container]


def make_inspect_command(container: str) -> list[str]:
    return ["docker", "inspect", "--format", "{{.State.Status}}", container]


def check_reachable(containers: Sequence[str]) -> None:
    """Before a restore builds anything: docker answers and knows each container, so the
    swap cannot fail on them after a long build."""
    for container in containers:
        ok, output = _docker(make_inspect_command(container))
        if not ok:
            raise RestoreError(f"cannot reach app container {container} ({output}): check "
                               "APP_CONTAINERS and that docker runs, or set "
                               "SKIP_APP_STOP=true; nothing was restored")


def _docker(command: list[str]) -> tuple[bool, str]:
    completed = execute.run(command, environment=child_environment(os.environ, docker=True),
                            timeout=120)
    return completed.returncode == 0, (completed.stderr or completed.stdout).strip()


@contextmanager
def stopped(containers: Sequence[str]) -> Iterator[None]:
    """Stop `containers` for the duration; start every one that was stopped, even on failure."""
    stopped_so_far: list[str] = []
    try:
        for container in containers:
            ok, output = _docker(make_stop_command(container))
            if not ok:
                raise RestoreError(f"could not stop app container {container} ({output}): "
                                   "check APP_CONTAINERS, or set SKIP_APP_STOP=true; the "
                                   "database was not changed")
            stopped_so_far.append(container)
            log.info("stopped app container %s", container)
        yield
    finally:
        for container in stopped_so_far:
            ok, output = _docker(make_start_command(container))
            if ok:
                log.info("started app container %s again", container)
            else:
                log.error("could not start app container %s again (%s): start it by hand "
                          "(docker start %s)", container, output, container)

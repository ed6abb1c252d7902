"""The command line. `main` is the console script; `app` the typer application."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from backup_agent.cli import (
    drill,  # noqa: F401 - registers drill
    operating,  # noqa: F401 - registers status, doctor, config, keygen
    pitr,  # noqa: F401 - registers restore-cluster
    wal,  # noqa: F401 - registers wal stream, wal setup, base-backup
)
from backup_agent.cli.app import app

GLOBAL_FLAGS = ("--debug", "--quiet", "-q")


def hoist_global_flags(arguments: Sequence[str]) -> list[str]:
    """Move global flags given after the command in front of it (`backup --debug` works)."""
    head = list(arguments)
    tail: list[str] = []
    if "--" in head:
        cut = head.index("--")
        head, tail = head[:cut], head[cut:]
    return ([argument for argument in head if argument in GLOBAL_FLAGS]
            + [argument for argument in head if argument not in GLOBAL_FLAGS] + tail)


def main() -> None:
    app(args=hoist_global_flags(sys.argv[1:]), prog_name="backup-agent")


__all__ = ["app", "main"]

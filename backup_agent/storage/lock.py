"""One run at a time per backup directory.

`flock` is held by the kernel for the life of the open file, so a run killed with SIGKILL
releases it by dying: a lock file left behind is never "stale", whatever it contains.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backup_agent.model.errors import LockedError
from backup_agent.storage.local import storage_error

LOCK_FILE_NAME = ".backup-agent.lock"


@contextmanager
def directory_lock(directory: Path, *, purpose: str) -> Iterator[None]:
    """Hold the exclusive lock on `directory`; raise LockedError at once if it is taken."""
    path = directory / LOCK_FILE_NAME
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise storage_error(error, directory) from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip()
            raise LockedError(
                f"another backup-agent run ({holder or 'unknown'}) holds the lock on "
                f"{directory}: wait for it to finish; nothing was changed") from None
        os.fchmod(descriptor, 0o600)  # a lock file from an older version was 0644
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}, {purpose}".encode(), 0)
        yield
    finally:
        os.close(descriptor)

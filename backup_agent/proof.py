"""Prove, then run: a backup is read once to prove it, and only those bytes then feed psql.

The proving pass checks everything that can be checked without running a byte: the
SHA-256, age's authentication, the whole gzip stream, pg_dump's closing line, and every
statement (streams/statements.py). A local backup is then read again through the same open
descriptor; one from S3 is spooled to a private, already-unlinked file while it is proven,
so what psql gets is exactly what was proven, whatever happens to the object meanwhile.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from backup_agent.model.backup import BackupRef, ReadableStream, Where
from backup_agent.model.errors import LocalStorageError
from backup_agent.streams.statements import StatementCheck
from backup_agent.streams.verify import Verdict, verify_stream

if TYPE_CHECKING:
    from pyrage.x25519 import Identity


# Session settings pg_dump writes at the top of a dump, by the major that introduced them.
SETTINGS_SINCE = {"transaction_timeout": 17}


@dataclass(frozen=True)
class Proof:
    verdict: Verdict
    stream: IO[bytes]  # the proven bytes, rewound: what the feed reads
    restrict_ranges: list[tuple[int, int]]  # the dump's own \restrict lines, left out
    setting_ranges: dict[str, list[tuple[int, int]]]  # whole-line SETs, by setting
    owner_ranges: list[tuple[int, int]]  # whole-line ALTER ... OWNER TO (for --no-owner)
    acl_ranges: list[tuple[int, int]]  # whole-line GRANT, REVOKE, ... (for --no-owner)
    policy_lines: list[tuple[int, int, bytes]]  # whole-line CREATE/COMMENT ON POLICY

    def left_out(self, server_major: int, *,
                 no_owner: bool = False) -> tuple[list[tuple[int, int]], list[str]]:
        """The byte ranges the feed leaves out for a server of `server_major`, and why.

        Always the dump's own \\restrict lines; and the SETs of session settings that this
        server is too old to know (a newer pg_dump writes them: PostgreSQL 16 has no
        transaction_timeout), which only bound the restore's own session.
        """
        ranges = list(self.restrict_ranges) + (self.owner_ranges + self.acl_ranges
                                               if no_owner else [])
        said = []
        for setting, since in SETTINGS_SINCE.items():
            if server_major < since and setting in self.setting_ranges:
                ranges += self.setting_ranges[setting]
                said.append(f"left out `SET {setting}`: the dump's pg_dump writes it, but "
                            f"PostgreSQL {server_major} has no such setting (it came in "
                            f"{since})")
        return sorted(ranges), said


class _Spooling:
    """Pass reads through, keeping a copy of every byte in `spool`."""

    def __init__(self, source: ReadableStream, spool: IO[bytes], directory: str) -> None:
        self._source = source
        self._spool = spool
        self._directory = directory

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        try:
            self._spool.write(data)
        except OSError as error:
            raise LocalStorageError(
                f"cannot hold the backup in {self._directory} while proving it "
                f"({error.strerror}): free space there, or restore from a local copy") from None
        return data

    def close(self) -> None:
        self._source.close()


def spool_directory(backup_directory: Path) -> str:
    """BACKUP_DIR when we may write there (it is sized for backups), else the temp dir."""
    if backup_directory.is_dir() and os.access(backup_directory, os.W_OK | os.X_OK):
        return str(backup_directory)
    return tempfile.gettempdir()


@contextmanager
def proven(backup: BackupRef, *, identities: Sequence[Identity] | None, spool_in: str,
           progress: Callable[[int], None] | None = None) -> Iterator[Proof]:
    """Read `backup` once, proving it; yield the verdict and the same bytes to feed."""
    with backup.open() as stream:
        if backup.where is Where.LOCAL and hasattr(stream, "seek"):
            verdict, check = _prove(stream, backup, identities, progress)
            stream.seek(0)
            yield Proof(verdict=verdict, stream=stream,  # type: ignore[arg-type]
                        restrict_ranges=check.restrict_ranges,
                        setting_ranges=check.setting_ranges, owner_ranges=check.owner_ranges,
                        acl_ranges=check.acl_ranges, policy_lines=check.policy_lines)
            return
        # 0600 and unlinked at once: nobody else can open, swap or read the spooled copy.
        with tempfile.TemporaryFile(dir=spool_in, prefix=".proving-") as spool:
            verdict, check = _prove(_Spooling(stream, spool, spool_in), backup, identities,
                                    progress)
            spool.flush()
            spool.seek(0)
            yield Proof(verdict=verdict, stream=spool, restrict_ranges=check.restrict_ranges,
                        setting_ranges=check.setting_ranges, owner_ranges=check.owner_ranges,
                        acl_ranges=check.acl_ranges, policy_lines=check.policy_lines)


def _prove(source: ReadableStream, backup: BackupRef, identities: Sequence[Identity] | None,
           progress: Callable[[int], None] | None) -> tuple[Verdict, StatementCheck]:
    check = StatementCheck()
    verdict = verify_stream(source, expected_sha256=backup.expected_sha256,
                            identities=identities, progress=progress, check=check)
    return verdict, check

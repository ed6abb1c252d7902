"""Feed a backup into psql for one database, proving the backup good in the same pass.

psql runs with -X (no psqlrc) and ON_ERROR_STOP=1, reading the decompressed SQL on stdin;
no temporary SQL file is written. The caller decides what the verdict means: a restore
throws the database away unless both psql and the verdict are good.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backup_agent import execute
from backup_agent.model.backup import ReadableStream
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import make_environment, make_psql_command
from backup_agent.postgres.diagnosis import last_meaningful_line
from backup_agent.streams.verify import Verdict, verify_stream

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

# pg_dump writes ownership as one-line statements: `ALTER TABLE shop.orders OWNER TO app;`
OWNER_STATEMENT = re.compile(rb"^ALTER (?:[A-Z]+ )+\S.* OWNER TO \S.*;$")
COPY_START = re.compile(rb"^COPY .* FROM stdin;$")
COPY_END = b"\\."
# psql's own output (--verbose) goes to our stderr, keeping stdout for --json.
STDERR_DESCRIPTOR = 2


@dataclass(frozen=True)
class FeedResult:
    verdict: Verdict
    psql_ok: bool
    psql_error: str  # psql's last error line, "" when it succeeded


# An ownership statement is one short line; a longer pending line (a huge value in COPY
# data, say) is passed on as it comes instead of being held in memory.
LONG_LINE_BYTES = 64 * 1024


class OwnerFilter:
    """Drop `ALTER ... OWNER TO` lines outside COPY data, for --no-owner restores."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink
        self._pending = b""
        self._in_copy = False
        self._in_long_line = False

    def __call__(self, data: bytes) -> None:
        if self._in_long_line:
            head, newline, data = data.partition(b"\n")
            self._sink(head + newline)
            if not newline:
                return
            self._in_long_line = False
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        kept = [line for line in lines if self._keep(line)]
        if kept:
            self._sink(b"\n".join(kept) + b"\n")
        if len(self._pending) > LONG_LINE_BYTES:
            self._sink(self._pending)
            self._pending = b""
            self._in_long_line = True

    def _keep(self, line: bytes) -> bool:
        if self._in_copy:
            self._in_copy = line != COPY_END
            return True
        if COPY_START.match(line):
            self._in_copy = True
            return True
        return not OWNER_STATEMENT.match(line)

    def flush(self) -> None:
        if self._pending and self._keep(self._pending):
            self._sink(self._pending)
        self._pending = b""


def make_restore_psql_command(settings: PostgresSettings, database: str, *,
                              verbose: bool) -> list[str]:
    command = make_psql_command(settings, database)
    return [*command, "--echo-errors", *(["--echo-queries"] if verbose else [])]


def feed_psql(settings: PostgresSettings, database: str, source: ReadableStream, *,
              expected_sha256: str | None, no_owner: bool = False, verbose: bool = False,
              progress: Callable[[int], None] | None = None,
              identities: Sequence[Identity] | None = None) -> FeedResult:
    """Stream `source` into psql on `database`; return the verdict and psql's outcome."""
    with execute.running(make_restore_psql_command(settings, database, verbose=verbose),
                         environment=make_environment(settings), stdin=subprocess.PIPE,
                         stdout=STDERR_DESCRIPTOR if verbose else subprocess.DEVNULL) as psql:
        assert psql.process.stdin is not None
        stdin = psql.process.stdin
        broken = False

        def write(data: bytes) -> None:
            nonlocal broken
            if broken:
                return
            try:
                stdin.write(data)
            except BrokenPipeError:
                broken = True  # psql stopped at an error; keep reading to finish the verdict

        owner_filter = OwnerFilter(write) if no_owner else None
        verdict = verify_stream(source, expected_sha256=expected_sha256,
                                sink=owner_filter or write, progress=progress,
                                identities=identities)
        if owner_filter:
            owner_filter.flush()
        try:
            stdin.close()
        except BrokenPipeError:
            broken = True
        returncode = psql.wait()
        error_output = psql.stderr_text()
    psql_ok = returncode == 0 and not broken
    return FeedResult(verdict=verdict, psql_ok=psql_ok,
                      psql_error="" if psql_ok else last_meaningful_line(error_output))

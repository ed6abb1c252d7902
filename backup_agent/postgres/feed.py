"""Feed proven backup bytes into psql for one database (see proof.py for the proving).

psql runs with -X (no psqlrc) and ON_ERROR_STOP=1, reading the decompressed SQL on stdin;
no SQL file is written. The pass hashes again, so the caller can tell that psql got the
very bytes that were proven.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backup_agent import execute
from backup_agent.model.backup import ReadableStream
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import make_environment, make_psql_command
from backup_agent.postgres.diagnosis import last_meaningful_line
from backup_agent.streams.filters import RangeDropper
from backup_agent.streams.verify import Verdict, verify_stream

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

# psql's own output (--verbose) goes to our stderr, keeping stdout for --json.
STDERR_DESCRIPTOR = 2


@dataclass(frozen=True)
class FeedResult:
    verdict: Verdict
    psql_ok: bool
    psql_error: str  # psql's last error line, "" when it succeeded


# psql learns standard_conforming_strings from the server as it connects. A server set to
# off would make psql read backslashes in quoted strings differently from the statement
# check (which reads them as pg_dump's own `SET standard_conforming_strings = on` means):
# the session starts with it on, so both split the dump the same way from the first byte.
RESTORE_OPTIONS = "-c standard_conforming_strings=on"


def make_restore_psql_command(settings: PostgresSettings, database: str, *,
                              verbose: bool) -> list[str]:
    command = make_psql_command(settings, database)
    if settings.container:  # docker passes PGOPTIONS into the container by name
        at = command.index(settings.container)
        command[at:at] = ["-e", "PGOPTIONS"]
    return [*command, "--echo-errors", *(["--echo-queries"] if verbose else [])]


def restore_environment(settings: PostgresSettings) -> dict[str, str]:
    environment = make_environment(settings)
    environment["PGOPTIONS"] = f"{environment.get('PGOPTIONS', '')} {RESTORE_OPTIONS}".strip()
    return environment


def feed_psql(settings: PostgresSettings, database: str, source: ReadableStream, *,
              expected_sha256: str | None, verbose: bool = False,
              progress: Callable[[int], None] | None = None,
              identities: Sequence[Identity] | None = None,
              drop_ranges: Sequence[tuple[int, int]] = (),
              restrict: bool = False) -> FeedResult:
    """Stream `source` into psql on `database`; return the verdict and psql's outcome.

    `drop_ranges` (the dump's own \\restrict lines) are left out; with `restrict`, psql's
    input starts with a \\restrict of our own, so psql refuses every meta-command.
    """
    with execute.running(make_restore_psql_command(settings, database, verbose=verbose),
                         environment=restore_environment(settings), stdin=subprocess.PIPE,
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

        if restrict:
            # psql 17.6+/18: only `\\unrestrict KEY` is accepted from here on; nobody
            # else knows the key, and nothing in the dump can name it.
            write(f"\\restrict {secrets.token_hex(16)}\n".encode())
        # --no-owner: the caller passes the statement check's ALTER ... OWNER TO ranges.
        verdict = verify_stream(source, expected_sha256=expected_sha256,
                                sink=RangeDropper(write, drop_ranges) if drop_ranges else write,
                                progress=progress, identities=identities)
        try:
            stdin.close()
        except BrokenPipeError:
            broken = True
        returncode = psql.wait()
        error_output = psql.stderr_text()
    psql_ok = returncode == 0 and not broken
    return FeedResult(verdict=verdict, psql_ok=psql_ok,
                      psql_error="" if psql_ok else last_meaningful_line(error_output))

"""pg_basebackup as one tar stream on stdout, into a writer the caller composed.

`--wal-method=none`: the base backup relies on the WAL archive (`wal stream`) for the WAL
from its start to its end LSN, so it is not duplicated inside. `--checkpoint=fast`: the
start waits for one immediate checkpoint, not for up to checkpoint_timeout of a spread one
(a bounded wait). The backup manifest (SHA-256 checksums of every file) travels inside the
tar, as pg_basebackup puts it there; `pg_verifybackup` checks an extracted copy with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

from backup_agent import execute
from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.physical.tar_tap import TarTap
from backup_agent.postgres.commands import client_program, make_environment
from backup_agent.postgres.diagnosis import diagnose

READ_CHUNK_BYTES = 1024 * 1024
LABEL = "backup_label"
MANIFEST = "backup_manifest"
_START = re.compile(r"^START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+)", re.MULTILINE)
_TIMELINE = re.compile(r"^START TIMELINE: ([0-9]+)", re.MULTILINE)
_RANGE = re.compile(r'"Timeline": ?([0-9]+), ?"Start-LSN": ?"([0-9A-F]+/[0-9A-F]+)", ?'
                    r'"End-LSN": ?"([0-9A-F]+/[0-9A-F]+)"')


@dataclass(frozen=True)
class BaseBackupFacts:
    start_lsn: str
    start_timeline: int
    end_lsn: str
    end_timeline: int
    size_bytes: int  # the tar's size (plaintext)


def make_basebackup_command(settings: PostgresSettings, label: str) -> list[str]:
    connection = ["--no-password"]
    if settings.host:
        connection += ["--host", settings.host]
    if settings.port:
        connection += ["--port", str(settings.port)]
    return [*client_program(settings, "pg_basebackup"), *connection, "--username",
            settings.user, "--pgdata", "-", "--format", "tar", "--wal-method", "none",
            "--checkpoint", "fast", "--manifest-checksums", "SHA256", "--label", label]


def facts_from(label: bytes, manifest_tail: bytes, size: int) -> BaseBackupFacts:
    """Return the start and end of WAL the backup needs, from its label and manifest."""
    started = label_start(label.decode("utf-8", "replace"))
    ranges = _RANGE.findall(manifest_tail.decode("utf-8", "replace").replace("\n", ""))
    if started is None or not ranges:
        raise DatabaseError("pg_basebackup's output lacks its backup_label or the manifest's "
                            "WAL range: the base backup is incomplete; check the server log "
                            "and run again")
    end_timeline, _range_start, end = ranges[-1]
    return BaseBackupFacts(start_lsn=started[0], start_timeline=started[1], end_lsn=end,
                           end_timeline=int(end_timeline), size_bytes=size)


def label_start(label: str) -> tuple[str, int] | None:
    """Return the start LSN and timeline a backup_label records, or None if it is none."""
    start, timeline = _START.search(label), _TIMELINE.search(label)
    if start is None or timeline is None:
        return None
    return start[1], int(timeline[1])


def stream_basebackup(settings: PostgresSettings, target: BinaryIO, *,
                      label: str) -> BaseBackupFacts:
    """Write the base backup's tar into `target`; raise unless pg_basebackup exited 0 with a
    label and a manifest in its output."""
    tap = TarTap(target, whole={LABEL}, tails={MANIFEST})
    with execute.running(make_basebackup_command(settings, label),
                         environment=make_environment(settings)) as child:
        assert child.process.stdout is not None
        while chunk := child.process.stdout.read(READ_CHUNK_BYTES):
            tap.write(chunk)
        if child.wait() != 0:
            raise diagnose(child.stderr_text(), settings, program="pg_basebackup")
    return facts_from(tap.members.get(LABEL, b""), tap.members.get(MANIFEST, b""), tap.size)

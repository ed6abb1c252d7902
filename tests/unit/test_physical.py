"""Base backups' pure pieces: the tar tap, the facts from label and manifest, the descriptor."""

from __future__ import annotations

import io
import tarfile

import pytest

from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.physical.basebackup import facts_from, make_basebackup_command
from backup_agent.physical.descriptor import Descriptor, StoredFile, parse_descriptor
from backup_agent.physical.tar_tap import TarTap

LABEL = (b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
         b"CHECKPOINT LOCATION: 0/2000080\nSTART TIMELINE: 1\n")
MANIFEST = (b'{ "PostgreSQL-Backup-Manifest-Version": 2,\n"Files": [],\n"WAL-Ranges": [\n'
            b'{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000158" }\n],\n'
            b'"Manifest-Checksum": "ab"}\n')


def tar_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 10**6])
def test_the_tap_passes_every_byte_and_keeps_the_label_and_manifest(chunk: int) -> None:
    data = tar_of({"backup_label": LABEL, "base/1/1234": b"x" * 70_000,
                   "global/pg_control": b"\1" * 8192, "backup_manifest": MANIFEST})
    target = io.BytesIO()
    tap = TarTap(target, whole={"backup_label"}, tails={"backup_manifest"})
    for start in range(0, len(data), chunk):
        tap.write(data[start:start + chunk])
    assert target.getvalue() == data and tap.size == len(data)
    assert tap.members == {"backup_label": LABEL, "backup_manifest": MANIFEST}
    facts = facts_from(tap.members["backup_label"], tap.members["backup_manifest"], tap.size)
    assert (facts.start_lsn, facts.start_timeline, facts.end_lsn, facts.end_timeline) == \
        ("0/2000028", 1, "0/2000158", 1)


def test_a_tar_without_label_or_manifest_is_an_incomplete_backup() -> None:
    with pytest.raises(DatabaseError, match="incomplete"):
        facts_from(b"", MANIFEST, 10)
    with pytest.raises(DatabaseError, match="incomplete"):
        facts_from(LABEL, b"", 10)


def test_pg_basebackup_writes_one_tar_to_stdout_without_wal_and_with_sha256() -> None:
    command = make_basebackup_command(PostgresSettings(database="app", user="backup",
                                                       host="db"), "backup-agent x")
    assert command == ["pg_basebackup", "--no-password", "--host", "db", "--username",
                       "backup", "--pgdata", "-", "--format", "tar", "--wal-method", "none",
                       "--checkpoint", "fast", "--manifest-checksums", "SHA256", "--label",
                       "backup-agent x"]


def test_the_descriptor_round_trips_and_refuses_other_documents() -> None:
    descriptor = Descriptor(
        system_identifier="7412345678901234567", server_version="18.1", major_version=18,
        start_lsn="0/2000028", start_timeline=1, end_lsn="0/2000158", end_timeline=1,
        start_time="2026-12-02T21:00:00+00:00", end_time="2026-12-02T21:00:09+00:00",
        label="backup-agent 20261202T210000Z",
        tar=StoredFile(key="base/7412345678901234567/20261202T210000Z/base.tar",
                       sha256="ab" * 32, size=10, stored_sha256="cd" * 32, stored_size=20,
                       encoding="gzip"))
    assert parse_descriptor(descriptor.render()) == descriptor
    with pytest.raises(ValueError):
        parse_descriptor(b'{"format": "something else"}')

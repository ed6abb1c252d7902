"""`backup-agent base-backup` with the real pg_basebackup: tar + manifest through gzip/age,
create-only into S3, then a signed descriptor; read back proven, verified by pg_verifybackup."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from functools import partial
from pathlib import Path

import pytest

from backup_agent.keys.signing import signer
from backup_agent.model.settings import S3Settings
from backup_agent.physical.descriptor import parse_descriptor
from backup_agent.storage.s3 import S3Store
from backup_agent.streams.age import new_identity, parse_identities
from backup_agent.wal.codec import decode_stream
from backup_agent.wal.objects import Facts
from backup_agent.wal.prove import read_proven
from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent, signed


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_base_backup_is_stored_described_signed_and_verifiable(
        agent_env: dict[str, str], pg_server: PostgresServer, s3_endpoint: S3Endpoint,
        bucket: str, backup_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        encrypted: bool) -> None:
    identity, recipient = new_identity()
    environment = {**agent_env, **({"ENCRYPT_TO": recipient} if encrypted else {})}
    result = run_agent(["base-backup", "--json"], environment)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    system_identifier = pg_server.psql(
        "postgres", "SELECT system_identifier FROM pg_control_system();").strip()
    assert report["descriptor_key"].startswith(f"base/{system_identifier}/")
    assert list(backup_dir.iterdir()) == []  # the hidden file is gone

    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    store = S3Store(S3Settings(bucket=bucket, prefix="backups/"))
    vouch = partial(signer, trusted=[signed({})["TRUSTED_SIGNING_KEYS"]])
    descriptor = parse_descriptor(read_proven(
        store, report["descriptor_key"], vouch=lambda document, text: vouch(document, text)))
    assert descriptor.system_identifier == system_identifier
    assert descriptor.major_version == 18 and descriptor.start_timeline == 1
    assert descriptor.tar.encoding == ("gzip+age" if encrypted else "gzip")

    # The tar, proven against the signed descriptor, then checked by pg_verifybackup.
    stream = store.opener(store.prefix + descriptor.tar.key, descriptor.tar.stored_size)()
    tar_bytes = io.BytesIO()
    decode_stream(stream, tar_bytes, Facts(sha256=descriptor.tar.sha256,
                                           size=descriptor.tar.size,
                                           encoding=descriptor.tar.encoding),
                  identities=parse_identities(identity.decode(), "test"), what="base.tar")
    stream.close()
    extracted = tmp_path / "data"
    with tarfile.open(fileobj=io.BytesIO(tar_bytes.getvalue())) as archive:
        archive.extractall(extracted, filter="tar")
    label = (extracted / "backup_label").read_text()
    assert f"START WAL LOCATION: {descriptor.start_lsn} " in label
    verified = subprocess.run([str(pg_server.bin_directory / "pg_verifybackup"),
                               "--no-parse-wal", str(extracted)], capture_output=True,
                              text=True, check=False)
    assert verified.returncode == 0, verified.stderr

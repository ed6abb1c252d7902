"""An archived test cluster's WAL in a bucket, as `wal stream` would have put it there:
each file uploaded by the agent's own uploader, signed by the server's key."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from backup_agent.keys.signing import load_signing_key, sign
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.names import parse_wal_name
from backup_agent.wal.uploader import Encoder, upload_file
from testbed.pitr import (
    ArchivedCluster,
    archive_everything,
    copy_of,
    start_archiving,
    tick,
)
from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import clean_environment, run_agent, signed


def uploaded_archive(cluster: ArchivedCluster, s3_endpoint: S3Endpoint, bucket: str,
                     monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Upload the cluster's archived WAL to `bucket`; return the environment a restore on
    another machine runs with (the bucket, the server's public key, its binaries)."""
    environment = signed({**clean_environment(), **s3_endpoint.environment(),
                          "S3_BUCKET": bucket, "PG_BINDIR": str(cluster.server.bin_directory),
                          "AWS_MAX_ATTEMPTS": "2"})
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    store = S3Store(S3Settings(bucket=bucket))
    system_identifier = cluster.server.psql(
        "postgres", "SELECT system_identifier FROM pg_control_system();").strip()
    key = load_signing_key(Path(environment["SIGNING_KEY_FILE"]))
    encoder = Encoder(system_identifier=system_identifier, sign=partial(sign, key))
    spool = copy_of(cluster, cluster.archive, "spool")
    for path in sorted(spool.iterdir()):
        wal = parse_wal_name(path.name)
        if wal is not None:
            upload_file(store, wal, path, encoder)
    shutil.rmtree(spool)
    return environment


@dataclass(frozen=True)
class BucketArchive:
    """A cluster's archive in S3 as `wal stream` and `base-backup` leave it."""

    bucket: str
    environment: dict[str, str]  # a restore's on another machine: bucket, key, binaries
    system_identifier: str
    segments: list[str]  # the WAL files' names, in order
    base: dict[str, Any]  # `base-backup --json`'s report
    cluster: ArchivedCluster


def _load(server: PostgresServer, stop: threading.Event) -> None:
    while not stop.is_set():
        server.psql("postgres", "INSERT INTO load SELECT g, md5(g::text) "
                                "FROM generate_series(1, 2000) g;")


def drill_archive(server: PostgresServer, s3_endpoint: S3Endpoint, bucket: str) -> BucketArchive:
    """A real archive made under load: WAL archived while a writer inserts and ticks commit,
    one `backup-agent base-backup` to S3 in the middle, then every WAL file uploaded signed."""
    archive = start_archiving(server)
    server.psql("postgres", "CREATE TABLE ticks (id serial PRIMARY KEY, note text); "
                            "CREATE TABLE load (n int, t text); CREATE INDEX ON load (t);")
    s3_endpoint.create_bucket(bucket)
    stop = threading.Event()
    writer = threading.Thread(target=_load, args=(server, stop), daemon=True)
    writer.start()
    try:
        tick(server, 5)
        backups = server.data_directory.parent / "backups"
        backups.mkdir(mode=0o700)
        environment = signed({**clean_environment(), **server.environment("postgres"),
                              **s3_endpoint.environment(), "S3_BUCKET": bucket,
                              "BACKUP_DIR": str(backups), "AWS_MAX_ATTEMPTS": "2"})
        made = run_agent(["base-backup", "--json"], environment)
        assert made.returncode == 0, made.stderr
        for _ in range(3):  # a few seconds of commits, spread over segments
            tick(server, 20, pause=0.05)
            server.psql("postgres", "SELECT pg_switch_wal();")
    finally:
        stop.set()
        writer.join(60)
    tick(server, 5)
    archive_everything(server, archive)
    cluster = ArchivedCluster(server=server, archive=archive, base=archive, commits=[])
    with pytest.MonkeyPatch.context() as patch:
        uploaded = uploaded_archive(cluster, s3_endpoint, bucket, patch)
    segments = sorted(path.name for path in archive.iterdir()
                      if parse_wal_name(path.name) is not None and "." not in path.name)
    report = json.loads(made.stdout)
    return BucketArchive(bucket, uploaded, report["system_identifier"], segments, report,
                         cluster)


def bucket_keys(s3: S3Endpoint, bucket: str, prefix: str = "") -> list[str]:
    paginator = s3.client().get_paginator("list_objects_v2")
    return [item["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])]


def copy_bucket(s3: S3Endpoint, source: str, target: str) -> None:
    """Every object of `source` into a new bucket `target`, metadata kept."""
    s3.create_bucket(target)
    client = s3.client()
    for key in bucket_keys(s3, source):
        client.copy_object(Bucket=target, Key=key, CopySource={"Bucket": source, "Key": key})


def record_byte(pg_waldump: Path, directory: Path, name: str,
                segment_bytes: int = 16 * 1024 * 1024) -> int | None:
    """The offset in segment `name` (in `directory`) of a byte in the middle of one of its
    records, away from page headers: 60 bytes into a record of 80 or more (past its header
    and block references), on the record's own page, after the segment's first record (it
    may continue from the segment before). The record's CRC covers it."""
    listed = subprocess.run([str(pg_waldump), "--path", str(directory), name],
                            capture_output=True, text=True, check=False).stdout
    for line in listed.splitlines()[1:]:
        match = re.search(r"len \(rec/tot\): +\d+/ *(\d+), .*lsn: [0-9A-F]+/([0-9A-F]+)", line)
        if match and int(match.group(1)) >= 80:
            offset = int(match.group(2), 16) % segment_bytes + 60
            if offset // 8192 == (offset - 60) // 8192 and offset % 8192 > 64:
                return offset
    return None


def flip_and_resign(s3: S3Endpoint, bucket: str, key: str, local: Path, offset: int, *,
                    system_identifier: str, signing_key_file: Path) -> None:
    """Flip the byte at `offset` of the segment at `local` (fetched from `key`, relative to
    S3_PREFIX) and store it again in its place, signed by the server's key: as a bad disk
    under the spool would have it uploaded. The signature and hash agree; only the record's
    CRC can tell."""
    data = bytearray(local.read_bytes())
    data[offset] ^= 0xFF
    local.write_bytes(bytes(data))
    store = S3Store(S3Settings(bucket=bucket))
    s3.client().delete_object(Bucket=bucket, Key=store.prefix + key)
    wal = parse_wal_name(local.name)
    assert wal is not None
    upload_file(store, wal, local, Encoder(
        system_identifier=system_identifier,
        sign=partial(sign, load_signing_key(signing_key_file))))

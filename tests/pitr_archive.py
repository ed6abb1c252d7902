"""An archived test cluster's WAL in a bucket, as `wal stream` would have put it there:
each file uploaded by the agent's own uploader, signed by the server's key."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import pytest

from backup_agent.keys.signing import load_signing_key, sign
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.names import parse_wal_name
from backup_agent.wal.uploader import Encoder, upload_file
from testbed.pitr import ArchivedCluster, copy_of
from testbed.s3 import S3Endpoint
from tests.conftest import clean_environment, signed


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

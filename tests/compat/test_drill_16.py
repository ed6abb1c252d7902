"""`backup-agent drill` with PostgreSQL 16.2's binaries (pgserver): five moments, exact.

pgserver ships pg_amcheck but not the amcheck extension, so the drill says pg_amcheck did
not run (a warning, not a failure); the postgres:16 image the weekly drill uses has it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from testbed.postgres16 import running_server_16
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.pitr_archive import BucketArchive, drill_archive


@pytest.fixture(scope="module")
def archive(s3_endpoint: S3Endpoint) -> Iterator[BucketArchive]:
    with running_server_16() as server:
        yield drill_archive(server, s3_endpoint, "drill-16-source")


def test_the_drill_restores_five_moments_exactly_on_16(archive: BucketArchive) -> None:
    user = archive.cluster.server.system_user
    result = run_agent(["drill", "--json", "--targets", "5",
                        *(["--run-as", user] if user else [])],
                       archive.environment)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "warning" and report["drill"]["exact"] == 5
    assert report["warnings"] == [
        "pg_amcheck did not run: unavailable: these PostgreSQL binaries have no amcheck "
        "extension (contrib); install it (the postgres images have it)"]
    for target in report["drill"]["targets"]:
        assert target["exact"] and target["reached_last"] == target["expected_last"]
        assert ", 0/" in target["marker"]

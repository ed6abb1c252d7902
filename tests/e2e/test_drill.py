"""`backup-agent drill`: restore from S3 to random moments and prove each, on PostgreSQL 18.

Once per module: a real archive made under load (archive_command's WAL and one
`base-backup` taken while a writer inserts), uploaded signed to moto. The drill restores to
five random moments of its window, exact to the commit; each test that damages the archive
copies it into a bucket of its own first, and the drill must fail naming the damage.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.names import parse_lsn, segment_number
from backup_agent.wal.prove import fetch_proven
from testbed.postgres import running_server
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.pitr_archive import (
    BucketArchive,
    copy_bucket,
    drill_archive,
    flip_and_resign,
    record_byte,
)

SEGMENT_BYTES = 16 * 1024 * 1024
REPOSITORY = Path(__file__).resolve().parents[2]
PREFIX = S3Settings(bucket="any").prefix
_copies = itertools.count(1)


@pytest.fixture(scope="module")
def archive(s3_endpoint: S3Endpoint) -> Iterator[BucketArchive]:
    with running_server() as server:
        yield drill_archive(server, s3_endpoint, "drill-source")


def drill(archive: BucketArchive, environment: dict[str, str] | None = None,
          *arguments: str) -> tuple[int, dict[str, Any], str]:
    user = archive.cluster.server.system_user
    result = run_agent(["drill", "--json", *(["--run-as", user] if user else []), *arguments],
                       environment or archive.environment)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_the_drill_restores_five_random_moments_exactly(archive: BucketArchive,
                                                         tmp_path: Path) -> None:
    environment = {**archive.environment, "METRICS_FILE": str(tmp_path / "drill.prom"),
                   "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    code, report, stderr = drill(archive, environment, "--targets", "5")  # issue 22: 5 T
    assert code == 0, stderr
    assert report["command"] == "drill" and report["status"] == "success"
    drilled = report["drill"]
    assert drilled["findings"] == [] and drilled["exact"] == 5
    start, end = drilled["window"]["start"], drilled["window"]["end"]
    for target in drilled["targets"]:
        assert start <= target["target"] < end
        assert target["exact"] and target["problem"] is None
        assert target["reached_last"] == target["expected_last"] is not None
        assert "recovery stopping before" in target["logged_stop"]
        assert target["amcheck"] == "passed"
        assert target["marker"].startswith("committed ") and ", 0/" in target["marker"]
    lines = stderr.splitlines()
    assert sum(line.startswith("target ") and " exact; amcheck passed" in line
               for line in lines) == 5
    assert any(line.startswith("drill success: 5/5 target(s) exact") for line in lines)
    metrics = (tmp_path / "drill.prom").read_text()
    assert 'backup_agent_drill_last_run_success{database="postgres"} 1' in metrics
    assert 'backup_agent_drill_last_run_targets_exact{database="postgres"} 5' in metrics
    assert "Point-in-time drill: success" in (tmp_path / "summary.md").read_text()


def _copy(archive: BucketArchive, s3: S3Endpoint) -> BucketArchive:
    """The archive, in a bucket of this test's own (metadata kept)."""
    bucket = f"drill-copy-{next(_copies)}"
    copy_bucket(s3, archive.bucket, bucket)
    return replace(archive, bucket=bucket,
                   environment={**archive.environment, "S3_BUCKET": bucket})


def _key(archive: BucketArchive, name: str) -> str:
    """The object's key in the bucket (S3_PREFIX's default in front)."""
    return f"{PREFIX}wal/{archive.system_identifier}/{name[:8]}/{name}"


def _window(archive: BucketArchive) -> list[str]:
    """The segments the drill's base backup needs, from its start to the archive's end."""
    first = parse_lsn(archive.base["start_lsn"]) // SEGMENT_BYTES
    return [name for name in archive.segments
            if segment_number(name, SEGMENT_BYTES) >= first]


def _store(archive: BucketArchive) -> S3Store:
    return S3Store(S3Settings(bucket=archive.bucket))


def _delete_a_segment(archive: BucketArchive, s3: S3Endpoint) -> str:
    victim = _window(archive)[2]
    s3.client().delete_object(Bucket=archive.bucket, Key=_key(archive, victim))
    return victim


def _delete_the_base_backup_s_first_segment(archive: BucketArchive, s3: S3Endpoint) -> str:
    victim = _window(archive)[0]
    s3.client().delete_object(Bucket=archive.bucket, Key=_key(archive, victim))
    return victim


def _flip_a_stored_byte(archive: BucketArchive, s3: S3Endpoint) -> str:
    """A byte of the stored object changed after upload: its signed hash no longer holds."""
    victim = _window(archive)[1]
    client = s3.client()
    stored = client.get_object(Bucket=archive.bucket, Key=_key(archive, victim))
    body = bytearray(stored["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=archive.bucket, Key=_key(archive, victim), Body=bytes(body),
                      Metadata=stored["Metadata"])
    return victim


def _flip_a_byte_before_signing(archive: BucketArchive, s3: S3Endpoint,
                                tmp_path: Path) -> str:
    """A byte flipped before upload (a bad disk under the spool): the signature and hash
    agree, only the record's CRC can tell."""
    store = _store(archive)
    pg_waldump = Path(archive.environment["PG_BINDIR"]) / "pg_waldump"
    for victim in _window(archive)[1:-1]:
        local = tmp_path / victim
        fetch_proven(store, _key(archive, victim).removeprefix(PREFIX), local, vouch=None)
        offset = record_byte(pg_waldump, tmp_path, victim)
        if offset is not None:
            break
        local.unlink()
    else:
        raise AssertionError("no segment with a record to damage")
    flip_and_resign(s3, archive.bucket, _key(archive, victim).removeprefix(PREFIX), local,
                    offset, system_identifier=archive.system_identifier,
                    signing_key_file=Path(archive.environment["SIGNING_KEY_FILE"]))
    return victim


def _plant_an_unsigned_segment(archive: BucketArchive, s3: S3Endpoint) -> str:
    client = s3.client()
    last = archive.segments[-1]
    planted = f"{last[:16]}{int(last[16:], 16) + 1:08X}"
    genuine = client.get_object(Bucket=archive.bucket, Key=_key(archive, last))
    unsigned = {name: value for name, value in genuine["Metadata"].items()
                if name not in ("signature", "signing-key")}
    client.put_object(Bucket=archive.bucket, Key=_key(archive, planted),
                      Body=genuine["Body"].read(), Metadata=unsigned)
    return planted


@pytest.mark.parametrize(("damage", "level", "kind", "says"), [
    (_delete_a_segment, "names", "gap", "WAL missing on timeline 1"),
    (_delete_the_base_backup_s_first_segment, "names", "gap", "WAL missing on timeline 1"),
    (_flip_a_stored_byte, "content", "content", ""),
    (_flip_a_byte_before_signing, "parse", "waldump", "pg_waldump"),
    (_plant_an_unsigned_segment, "content", "signature", "is not signed"),
], ids=["deleted-segment", "base-backup-without-its-start", "flipped-byte-in-s3",
        "flipped-byte-signed", "planted-unsigned"])
def test_the_drill_fails_naming_each_fault_in_its_archive(
        archive: BucketArchive, s3_endpoint: S3Endpoint, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, damage: Callable[..., str], level: str, kind: str,
        says: str) -> None:
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    copy = _copy(archive, s3_endpoint)
    arguments = (copy, s3_endpoint, tmp_path) if "before_signing" in damage.__name__ \
        else (copy, s3_endpoint)
    victim = damage(*arguments)
    code, report, stderr = drill(copy)
    assert code == 8, stderr
    assert report["status"] == "failure" and report["drill"]["targets"] == []
    found = [item for item in report["drill"]["findings"] if item["first_segment"] == victim]
    assert [(item["level"], item["kind"]) for item in found] == [(level, kind)], \
        report["drill"]["findings"]
    assert says in found[0]["message"]
    [error] = [line for line in stderr.splitlines() if line.startswith("backup-agent: error:")]
    assert "drill failed before any restore" in error and victim in error


def test_the_runner_reads_the_drill_image_s_major_from_the_newest_signed_base_backup(
        archive: BucketArchive, tmp_path: Path) -> None:
    checks = [sys.executable, str(REPOSITORY / "scripts" / "runner_checks.py")]
    picked = subprocess.run([*checks, "newest-base-backup"], env=archive.environment,
                            capture_output=True, text=True, check=False)
    assert picked.returncode == 0, picked.stdout + picked.stderr
    assert picked.stdout.splitlines() == [f"system-identifier={archive.system_identifier}",
                                          "postgres-major=18"]
    keyless = {name: value for name, value in archive.environment.items()
               if name not in ("SIGNING_KEY_FILE", "TRUSTED_SIGNING_KEYS")}
    refused = subprocess.run([*checks, "newest-base-backup"], env=keyless,
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 8 and refused.stdout.startswith("::error::no trusted signing")
    report = tmp_path / "drill.json"
    report.write_text(json.dumps({"command": "drill", "status": "failure", "exit_code": 8,
                                  "error": "drill failed: 1 of 3 target(s) not proven",
                                  "warnings": []}))
    summarized = subprocess.run([*checks, "summarize-drill", str(report)],
                                env=archive.environment, capture_output=True, text=True,
                                check=False)
    assert summarized.returncode == 1
    assert summarized.stdout == ("::error::point-in-time drill failed: drill failed: 1 of 3 "
                                 "target(s) not proven\n")


def test_a_drill_that_drills_nothing_is_never_a_success(archive: BucketArchive,
                                                        s3_endpoint: S3Endpoint) -> None:
    # A typo or an old identifier (the server rebuilt): named, not "0/0 exact".
    code, report, stderr = drill(archive, None, "--system-identifier", "123")
    assert code == 9 and report["status"] == "failure", stderr
    assert "no WAL archive of cluster 123" in report["error"]
    assert archive.system_identifier in report["error"]
    # An empty bucket (the stream writes elsewhere): a finding, so a failure.
    s3_endpoint.create_bucket("drill-empty")
    code, report, stderr = drill(archive, {**archive.environment, "S3_BUCKET": "drill-empty"})
    assert code == 8 and "no WAL archive under" in report["error"], stderr

"""`backup-agent verify --wal [--deep]` against a real archive made under load.

Once per module: the real `wal stream` (pg_receivewal) archives the test PostgreSQL 18's WAL
into moto while a thread writes, and the real `base-backup` takes two base backups. A second
timeline is then *constructed* (not produced by a promotion): real segments of timeline 1,
from the one holding a switch point on, stored again under timeline 2's names, signed by the
server's key, with a real-format `00000002.history`. Timeline 1 goes on after that switch
point, as a primary does when a restored copy of it is promoted. Each test copies that
archive into its own bucket and damages it one way.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from backup_agent.keys.signing import load_signing_key, sign
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.names import parse_lsn, parse_wal_name, segment_number
from backup_agent.wal.prove import fetch_proven
from backup_agent.wal.uploader import Encoder, upload_file
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, clean_environment, run_agent, signed
from tests.pitr_archive import bucket_keys, copy_bucket, flip_and_resign, record_byte

PREFIX = "backups/"
_buckets = itertools.count(1)


@dataclass
class Archive:
    bucket: str
    environment: dict[str, str]
    system_identifier: str
    segments: list[str]  # timeline 1's, in order
    timeline_two: list[str]
    bases: list[dict[str, Any]]  # the descriptors, oldest first


def _wait(what: str, condition: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.3)
    raise AssertionError(f"waited {seconds}s for {what}")


def _keys(s3: S3Endpoint, bucket: str, prefix: str = PREFIX) -> list[str]:
    return bucket_keys(s3, bucket, prefix)


def _load(pg: PostgresServer, database: str, stop: threading.Event) -> None:
    pg.psql(database, "CREATE TABLE IF NOT EXISTS verify_load (n int, t text);")
    while not stop.is_set():
        pg.psql(database, "INSERT INTO verify_load SELECT g, md5(g::text) "
                          "FROM generate_series(1, 20000) g;")


@pytest.fixture(scope="module")
def archived_server() -> Iterator[PostgresServer]:
    """A server of its own: the shared one's WAL is everybody's (other tests switch it,
    restart the server, change the slot settings), and this archive must be exactly what
    its own load wrote."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="module")
def archive(archived_server: PostgresServer, s3_endpoint: S3Endpoint,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    root = tmp_path_factory.mktemp("verify-wal")
    pg_server = archived_server
    database, slot, bucket = "verify_wal_load", f"verify_wal_{os.getpid()}", "verify-wal-source"
    pg_server.create_database(database)
    s3_endpoint.create_bucket(bucket)
    pg_server.psql("postgres", f"SELECT pg_create_physical_replication_slot('{slot}', true);")
    (root / "spool").mkdir(mode=0o700)
    (root / "backups").mkdir()
    environment = signed({**clean_environment(), **pg_server.environment(database),
                          **s3_endpoint.environment(), "S3_BUCKET": bucket, "S3_PREFIX": PREFIX,
                          "BACKUP_DIR": str(root / "backups"), "WAL_SLOT": slot,
                          "WAL_SPOOL_DIR": str(root / "spool"), "WAL_MAX_DELAY": "1s",
                          "AWS_MAX_ATTEMPTS": "2"})
    environment.pop("TRUSTED_SIGNING_KEYS")  # the server trusts its own key, as in production
    stop = threading.Event()
    writer = threading.Thread(target=_load, args=(pg_server, database, stop), daemon=True)
    with (root / "stream.log").open("wb") as log:
        stream = subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        writer.start()
        bases = []
        for _ in range(2):
            for _ in range(3):
                time.sleep(1)
                pg_server.psql("postgres", "SELECT pg_switch_wal();")
            result = run_agent(["base-backup", "--json"], environment)
            assert result.returncode == 0, result.stderr
            bases.append(json.loads(result.stdout))
        for _ in range(4):
            time.sleep(1)
            pg_server.psql("postgres", "SELECT pg_switch_wal();")
        stop.set()
        writer.join(60)
        last = pg_server.psql("postgres", "SELECT pg_walfile_name(pg_current_wal_lsn());")
        pg_server.psql("postgres", "SELECT pg_switch_wal();")
        _wait("the last segment in S3",
              lambda: any(key.endswith(last.strip()) for key in _keys(s3_endpoint, bucket)))
    finally:
        stop.set()
        stream.send_signal(signal.SIGTERM)
        stream.wait(60)
        _wait("the slot to be released", lambda: pg_server.psql(
            "postgres", f"SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}';"
        ).strip() == "f", 30)
        pg_server.psql("postgres", f"SELECT pg_drop_replication_slot('{slot}');")
    system_identifier = bases[0]["system_identifier"]
    segments = sorted(key.rsplit("/", 1)[1] for key in _keys(s3_endpoint, bucket)
                      if "/00000001/" in key and not key.endswith(".history"))
    timeline_two = _second_timeline(root, s3_endpoint, environment, system_identifier,
                                    segments, bases)
    yield Archive(bucket, environment, system_identifier, segments, timeline_two, bases)


SEGMENT_BYTES = 16 * 1024 * 1024


def _number(name: str) -> int:
    """A segment's number from its file name (past 4 GiB of WAL the middle part counts too)."""
    return segment_number(name, SEGMENT_BYTES)


def _store(s3: S3Endpoint, bucket: str) -> S3Store:
    for name, value in s3.environment().items():
        os.environ[name] = value
    return S3Store(S3Settings(bucket=bucket, prefix=PREFIX))


def _second_timeline(root: Path, s3: S3Endpoint, environment: dict[str, str],
                     system_identifier: str, segments: list[str],
                     bases: list[dict[str, Any]]) -> list[str]:
    """Timeline 2 leaves timeline 1 inside the segment after the second base backup's end;
    its segments from there on are timeline 1's bytes, stored under timeline 2's names."""
    store = _store(s3, environment["S3_BUCKET"])
    end_segment = parse_lsn(bases[1]["end_lsn"]) // SEGMENT_BYTES
    switch = next(name for name in segments if _number(name) > end_segment)
    encoder = Encoder(system_identifier=system_identifier,
                      sign=partial(sign, load_signing_key(Path(environment["SIGNING_KEY_FILE"]))))
    spool = root / "timeline-two"
    spool.mkdir()
    switchpoint = f"{int(switch[8:16], 16):X}/{int(switch[16:], 16) * 16 * 1024 * 1024 + 40:X}"
    history = spool / "00000002.history"
    history.write_text(f"1\t{switchpoint}\tno recovery target specified\n")
    made = []
    for name in [history.name, *segments[segments.index(switch):]]:
        if name.endswith(".history"):
            path = history
        else:
            path = spool / f"00000002{name[8:]}"
            fetch_proven(store, f"wal/{system_identifier}/00000001/{name}", path, vouch=None)
            made.append(path.name)
        wal = parse_wal_name(path.name)
        assert wal is not None
        upload_file(store, wal, path, encoder)
    return made


@pytest.fixture
def copy(archive: Archive, s3_endpoint: S3Endpoint) -> Archive:
    """The archive, copied into a bucket of this test's own (metadata kept)."""
    bucket = f"verify-wal-copy-{next(_buckets)}"
    copy_bucket(s3_endpoint, archive.bucket, bucket)
    return Archive(bucket, {**archive.environment, "S3_BUCKET": bucket},
                   archive.system_identifier, archive.segments, archive.timeline_two,
                   archive.bases)


def verify(archive: Archive, *arguments: str) -> tuple[int, dict[str, Any], str]:
    result = run_agent(["verify", "--wal", "--json", *arguments], archive.environment)
    return result.returncode, json.loads(result.stdout), result.stderr


def wal_key(archive: Archive, name: str) -> str:
    return f"{PREFIX}wal/{archive.system_identifier}/{name[:8]}/{name}"


def test_a_whole_archive_with_a_timeline_switch_is_restorable_and_says_to_which_times(
        copy: Archive) -> None:
    code, report, stderr = verify(copy)
    assert code == 0, stderr
    assert report["status"] == "success" and report["wal"]["findings"] == []
    cluster = report["wal"]["clusters"][0]
    assert cluster["timelines"] == [1, 2]  # no false gap where timeline 1 goes on
    windows = cluster["base_backups"]
    assert len(windows) == 4 and all(item["restorable"] for item in windows)
    human = run_agent(["verify", "--wal"], copy.environment)
    assert human.returncode == 0, human.stderr
    assert "restorable between" in human.stderr and "level parse: not checked" in human.stderr


def test_one_deleted_segment_is_named_with_its_range_and_time_window(
        copy: Archive, s3_endpoint: S3Endpoint) -> None:
    end = parse_lsn(copy.bases[0]["end_lsn"]) // SEGMENT_BYTES
    victim = next(name for name in copy.segments if _number(name) > end + 1)
    s3_endpoint.client().delete_object(Bucket=copy.bucket, Key=wal_key(copy, victim))
    code, report, _stderr = verify(copy)
    assert code == 8 and report["status"] == "failure"
    gaps = [item for item in report["wal"]["findings"] if item["kind"] == "gap"]
    assert len(gaps) == 1  # shared by both timelines' paths, reported once
    assert gaps[0]["first_segment"] == gaps[0]["last_segment"] == victim
    window = gaps[0]["window"]
    assert window["start"] is not None and window["start_precision"].startswith("S3 upload")
    assert window["end"] == copy.bases[1]["end_time"]  # the next base backup restores again
    assert f"segments {victim}; no restore possible between" in gaps[0]["line"]


def test_a_removed_history_file_is_found(copy: Archive, s3_endpoint: S3Endpoint) -> None:
    s3_endpoint.client().delete_object(Bucket=copy.bucket,
                                       Key=wal_key(copy, "00000002.history"))
    code, report, _stderr = verify(copy)
    assert code == 8
    [finding] = report["wal"]["findings"]
    assert finding["kind"] == "history" and finding["timeline"] == 2
    assert finding["first_segment"] == copy.timeline_two[0]
    assert finding["last_segment"] == copy.timeline_two[-1]


def test_a_base_backup_without_its_starting_wal_is_not_restorable(
        copy: Archive, s3_endpoint: S3Endpoint) -> None:
    start = copy.bases[0]["start_lsn"]
    first = f"00000001{int(start.split('/')[0], 16):08X}" \
            f"{int(start.split('/')[1], 16) // (16 * 1024 * 1024):08X}"
    s3_endpoint.client().delete_object(Bucket=copy.bucket, Key=wal_key(copy, first))
    code, report, _stderr = verify(copy)
    assert code == 8
    [gap] = [item for item in report["wal"]["findings"] if item["kind"] == "gap"]
    assert gap["first_segment"] == first
    assert gap["window"]["start"] == copy.bases[0]["start_time"]
    assert gap["window"]["end"] == copy.bases[1]["end_time"]
    oldest = [item for item in report["wal"]["clusters"][0]["base_backups"]
              if item["start_lsn"] == start]
    assert oldest and not any(item["restorable"] for item in oldest)
    assert first in oldest[0]["problem"]


def test_objects_planted_without_a_valid_signature_are_named(
        copy: Archive, s3_endpoint: S3Endpoint) -> None:
    client = s3_endpoint.client()
    last = copy.segments[-1]
    after = f"{last[:16]}{int(last[16:], 16) + 1:08X}"
    genuine = client.head_object(Bucket=copy.bucket, Key=wal_key(copy, last))
    body = client.get_object(Bucket=copy.bucket, Key=wal_key(copy, last))["Body"].read()
    # The genuine signature, moved to another key; and one with none at all.
    client.put_object(Bucket=copy.bucket, Key=wal_key(copy, after), Body=body,
                      Metadata=genuine["Metadata"])
    unsigned = {name: value for name, value in genuine["Metadata"].items()
                if name not in ("signature", "signing-key")}
    beyond = f"{last[:16]}{int(last[16:], 16) + 2:08X}"
    client.put_object(Bucket=copy.bucket, Key=wal_key(copy, beyond), Body=body,
                      Metadata=unsigned)
    code, report, _stderr = verify(copy)
    assert code == 8
    found = {item["first_segment"]: item for item in report["wal"]["findings"]}
    assert set(found) == {after, beyond}
    assert all(item["kind"] == "signature" for item in found.values())
    assert "not signed by any of TRUSTED_SIGNING_KEYS" in found[after]["message"]
    assert "is not signed" in found[beyond]["message"]


def test_without_a_trusted_key_it_says_so_and_fails(copy: Archive) -> None:
    environment = {name: value for name, value in copy.environment.items()
                   if name not in ("SIGNING_KEY_FILE", "TRUSTED_SIGNING_KEYS")}
    result = run_agent(["verify", "--wal", "--json"], environment)
    assert result.returncode == 8
    report = json.loads(result.stdout)
    assert [item["kind"] for item in report["wal"]["findings"]] == ["key"]
    assert "TRUSTED_SIGNING_KEYS" in report["wal"]["findings"][0]["message"]


def test_deep_parses_the_chain_and_checks_each_base_backup(copy: Archive) -> None:
    code, report, stderr = verify(copy, "--deep")
    assert code == 0, (stderr, report["wal"]["findings"])
    assert report["wal"]["levels"][2]["checked"] is True
    windows = report["wal"]["clusters"][0]["base_backups"]
    assert all(item["window"]["end_precision"].startswith("commit") for item in windows)


def _a_byte_inside_a_record(archive: Archive, store: S3Store,
                            tmp_path: Path) -> tuple[str, Path, int]:
    """A segment of timeline 1 and the offset of a byte in the middle of one of its records
    (pg_waldump says where they are, `record_byte`)."""
    size = 16 * 1024 * 1024
    first = parse_lsn(archive.bases[0]["end_lsn"]) // size
    for victim in [name for name in archive.segments if _number(name) > first]:
        local = tmp_path / victim
        fetch_proven(store, wal_key(archive, victim).removeprefix(PREFIX), local, vouch=None)
        offset = record_byte(Path(archive.environment["PG_BINDIR"]) / "pg_waldump", tmp_path,
                             victim, size)
        if offset is not None:
            return victim, local, offset
        local.unlink()
    raise AssertionError("no segment with a record to damage")


def test_deep_finds_a_flipped_byte_in_a_signed_segment(
        copy: Archive, s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    # The byte flipped before upload (a bad disk under the spool): signature and hash agree,
    # only the record's CRC can tell.
    store = _store(s3_endpoint, copy.bucket)
    victim, local, offset = _a_byte_inside_a_record(copy, store, tmp_path)
    flip_and_resign(s3_endpoint, copy.bucket, wal_key(copy, victim).removeprefix(PREFIX), local,
                    offset, system_identifier=copy.system_identifier,
                    signing_key_file=Path(copy.environment["SIGNING_KEY_FILE"]))
    assert verify(copy)[0] == 0  # names and signatures are fine
    code, report, _stderr = verify(copy, "--deep")
    assert code == 8
    parsed = [item for item in report["wal"]["findings"] if item["level"] == "parse"]
    assert [item["first_segment"] for item in parsed] == [victim]
    assert "pg_waldump" in parsed[0]["message"]
    [gap] = [item for item in report["wal"]["findings"] if item["kind"] == "gap"]
    assert gap["first_segment"] == victim and gap["window"]["start"] is not None

"""Real faults injected into real backup runs: nothing is lost, each exit code is documented."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyrage import x25519

from backup_agent.model.naming import backup_name, s3_key
from testbed.faulty_s3 import Fault, fail_after, fail_first, faulty_s3
from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint, running_s3_process
from tests.conftest import run_agent
from tests.fabricate import flip_a_bit, snapshot_files
from tests.faults.conftest import (
    History,
    finish,
    pg_wrapper,
    s3_snapshot,
    start_agent,
    thaw,
    wait_for_child,
)
from tests.faults.table import expect


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("backup-agent: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "age"])
def test_pg_dump_killed_mid_stream(encrypted: bool, agent_env: dict[str, str],
                                   history: History) -> None:
    if encrypted:
        agent_env = {**agent_env, "ENCRYPT_TO": str(x25519.Identity.generate().to_public())}
    agent = start_agent(["backup"], agent_env)
    pg_dump = wait_for_child(agent, "pg_dump", argument="--format=plain")
    thaw(pg_dump)
    time.sleep(0.02)  # let it stream a little
    pg_dump.kill()
    result = finish(agent)
    expect(result, "pg_dump killed mid-stream (SIGKILL)")
    assert "killed by SIGKILL" in one_error_line(result.stderr)
    history.assert_unchanged()


def test_pg_dump_failing_after_writing_output(agent_env: dict[str, str], history: History,
                                              pg_server: PostgresServer,
                                              tmp_path: Path) -> None:
    wrapper = pg_wrapper(tmp_path / "bin", pg_server.bin_directory,
                         'if [ "$1" = --version ]; then exec "$REAL" "$@"; fi\n'
                         '"$REAL" "$@"\necho "pg_dump: error: injected failure" >&2\nexit 1')
    result = run_agent(["backup"], {**agent_env, "PG_BINDIR": str(wrapper)})
    expect(result, "pg_dump exits non-zero after writing output")
    assert "injected failure" in one_error_line(result.stderr)
    history.assert_unchanged()


def test_dump_without_its_closing_line(agent_env: dict[str, str], history: History,
                                       pg_server: PostgresServer, tmp_path: Path) -> None:
    wrapper = pg_wrapper(tmp_path / "bin", pg_server.bin_directory,
                         'if [ "$1" = --version ]; then exec "$REAL" "$@"; fi\n'
                         '"$REAL" "$@" | head -n -6')
    result = run_agent(["backup"], {**agent_env, "PG_BINDIR": str(wrapper)})
    expect(result, "dump without its closing 'dump complete' line")
    assert "lacks the closing 'dump complete' line" in one_error_line(result.stderr)
    history.assert_unchanged()


def test_server_restarted_during_the_dump(agent_env: dict[str, str], history: History,
                                          pg_server: PostgresServer) -> None:
    agent = start_agent(["backup"], agent_env)
    pg_dump = wait_for_child(agent, "pg_dump", argument="--format=plain")
    pg_server.restart()
    thaw(pg_dump)
    result = finish(agent)
    expect(result, "PostgreSQL restarted during the dump")
    one_error_line(result.stderr)
    history.assert_unchanged()


@pytest.mark.parametrize(("stop_signal", "encrypted"), [
    (signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-age"])
def test_signal_mid_dump_cleans_up(stop_signal: signal.Signals, encrypted: bool,
                                   agent_env: dict[str, str], history: History,
                                   backup_dir: Path) -> None:
    if encrypted:  # the age thread must not keep the run (or its temp file) alive
        agent_env = {**agent_env, "ENCRYPT_TO": str(x25519.Identity.generate().to_public())}
    agent = start_agent(["backup"], agent_env)
    pg_dump = wait_for_child(agent, "pg_dump", argument="--format=plain")
    os.kill(agent.pid, stop_signal)
    result = finish(agent)
    expect(result, "SIGTERM or SIGINT mid-dump")
    assert not pg_dump.is_running() or pg_dump.status() == "zombie"
    assert not list(backup_dir.glob(".tmp-*"))
    history.assert_unchanged()
    assert run_agent(["backup"], agent_env).returncode == 0  # the lock was released


def test_sigterm_during_the_upload_aborts_the_multipart_upload(
        agent_env: dict[str, str], history: History, s3_endpoint: S3Endpoint,
        bucket: str) -> None:
    # The upload runs while the dump streams: stall the parts, then interrupt.
    with faulty_s3(s3_endpoint.url, lambda request: 2.0 if request.is_upload_part
                   else None) as proxy:
        environment = {**agent_env, "AWS_ENDPOINT_URL_S3": proxy.url, "S3_PART_SIZE_MB": "5"}
        agent = start_agent(["backup", "--json"], environment)
        while not any(request.is_upload_part for request in proxy.seen):
            assert agent.poll() is None, agent.communicate()
            time.sleep(0.005)
        os.kill(agent.pid, signal.SIGTERM)
        result = finish(agent)
    expect(result, "SIGTERM during the S3 upload (it runs while the dump streams)")
    assert s3_endpoint.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert history.before is not None
    assert s3_snapshot(s3_endpoint, bucket) == history.before[1]  # no new object at all
    after = snapshot_files(history.backup_dir)
    assert all(after.get(name) == content for name, content in history.before[0].items())
    # Interrupted mid-dump: nothing published. Interrupted after the local backup was
    # published (the upload's last parts still in flight): that backup stays, whole.
    for name in history.new_local_backups():
        assert f"{name}.sha256" in after and f"{name}.manifest.json" in after


def test_s3_errors_are_retried_and_the_backup_succeeds(
        agent_env: dict[str, str], history: History, s3_endpoint: S3Endpoint) -> None:
    rule = fail_first(2, Fault(503, "SlowDown", "Please reduce your request rate."),
                      lambda request: request.is_put_object or request.is_upload_part)
    with faulty_s3(s3_endpoint.url, rule) as proxy:
        result = run_agent(["backup", "--json"],
                           {**agent_env, "AWS_ENDPOINT_URL_S3": proxy.url, "AWS_MAX_ATTEMPTS": "4"})
    expect(result, "S3 answers 500/503 to some requests")
    report = json.loads(result.stdout)
    assert s3_endpoint.client().head_object(Bucket=report["s3"]["bucket"],
                                            Key=report["s3"]["key"])["ContentLength"] > 0
    # 5 files (the dump, .sha256, globals, .sig, manifest), 2 retries
    assert sum(request.is_put_object for request in proxy.seen) == 5 + 2


def test_s3_failing_for_good_mid_multipart_leaves_no_object(
        agent_env: dict[str, str], history: History, s3_endpoint: S3Endpoint,
        bucket: str) -> None:
    rule = fail_after(1, Fault(500, "InternalError", "We encountered an internal error."),
                      lambda request: request.is_upload_part)
    with faulty_s3(s3_endpoint.url, rule) as proxy:
        result = run_agent(["backup"], {**agent_env, "AWS_ENDPOINT_URL_S3": proxy.url,
                                        "S3_PART_SIZE_MB": "5"})
    expect(result, "S3 fails for good mid-multipart")
    one_error_line(result.stderr)
    client = s3_endpoint.client()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    [new] = history.new_local_backups()  # the local backup is kept
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert not any(new in key for key in keys)
    assert history.before is not None and len(keys) == len(history.before[1])


def test_clock_skew_says_to_fix_the_clock(agent_env: dict[str, str], history: History,
                                          s3_endpoint: S3Endpoint) -> None:
    skew = Fault(403, "RequestTimeTooSkewed",
                 "The difference between the request time and the current time is too large.")
    with faulty_s3(s3_endpoint.url, lambda request: skew) as proxy:
        result = run_agent(["backup"], {**agent_env, "AWS_ENDPOINT_URL_S3": proxy.url})
    expect(result, "clock skew (RequestTimeTooSkewed)")
    assert "clock" in one_error_line(result.stderr)
    assert len(history.new_local_backups()) == 1


def test_an_object_already_at_the_key_is_never_overwritten(
        agent_env: dict[str, str], history: History, s3_endpoint: S3Endpoint,
        bucket: str) -> None:
    # Someone holding the writer's key plants objects under every name the next run may take.
    client = s3_endpoint.client()
    now = datetime.now(UTC)
    for second in range(-2, 120):
        name = backup_name(now + timedelta(seconds=second), encrypted=False)
        client.put_object(Bucket=bucket, Key=s3_key("backups/", name), Body=b"planted")
    planted = s3_snapshot(s3_endpoint, bucket)
    result = run_agent(["backup"], agent_env)
    expect(result, "an object already at the backup's S3 key (planted, or another agent's)")
    assert "refusing to overwrite s3://" in one_error_line(result.stderr)
    assert s3_snapshot(s3_endpoint, bucket) == planted
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert len(history.new_local_backups()) == 1  # kept, and retention did not run
    assert history.before is not None
    assert set(history.before[0]) <= set(snapshot_files(history.backup_dir))


def test_wrong_credentials_name_the_key(agent_env: dict[str, str], backup_dir: Path) -> None:
    with running_s3_process() as s3:
        s3.create_bucket("guarded")
        s3.enforce_iam()
        result = run_agent(["backup"], {
            **agent_env, **s3.environment(access_key_id="AKIANOSUCHKEY0000000",
                                          secret_access_key="not-the-secret"),
            "S3_BUCKET": "guarded"})
    expect(result, "wrong AWS credentials (403)")
    assert "AWS_ACCESS_KEY_ID" in one_error_line(result.stderr)
    assert len(list(backup_dir.glob("db_backup_*.sql.gz"))) == 1


def test_a_second_run_is_refused_while_the_first_runs(agent_env: dict[str, str],
                                                      history: History) -> None:
    first = start_agent(["backup"], agent_env)
    pg_dump = wait_for_child(first, "pg_dump", argument="--format=plain")
    second = run_agent(["backup"], agent_env)
    thaw(pg_dump)
    expect(second, "a second run while one is running")
    assert f"pid {first.pid}" in one_error_line(second.stderr)
    assert finish(first).returncode == 0
    assert len(history.new_local_backups()) == 1


def test_a_run_after_a_killed_run_recovers(agent_env: dict[str, str], history: History,
                                           backup_dir: Path) -> None:
    killed = start_agent(["backup"], agent_env)
    pg_dump = wait_for_child(killed, "pg_dump", argument="--format=plain")
    killed.kill()  # SIGKILL: no clean-up at all
    finish(killed)
    pg_dump.kill()
    assert list(backup_dir.glob(".tmp-*")), "the killed run should have left its temp file"
    assert (backup_dir / ".backup-agent.lock").exists()
    result = run_agent(["backup"], agent_env)
    expect(result, "a run after one was killed (stale lock and temp file)")
    assert not list(backup_dir.glob(".tmp-*"))
    assert len(history.new_local_backups()) == 1


def test_retention_never_deletes_the_newest_good_backups(
        agent_env: dict[str, str], history: History, backup_dir: Path) -> None:
    fabricated = sorted(path.name for path in backup_dir.glob("db_backup_2026010*.sql.gz"))
    # The three newest older backups are damaged, each in its own way.
    truncated, flipped, unsigned = fabricated[-3:]
    path = backup_dir / truncated
    path.write_bytes(path.read_bytes()[:10])
    flip_a_bit(backup_dir / flipped)
    (backup_dir / f"{unsigned}.sha256").unlink()
    result = run_agent(["backup", "--json", "--keep-local", "4"], agent_env)
    expect(result, "corrupt or incomplete backups among the kept ones")
    remaining = sorted(path.name for path in backup_dir.glob("db_backup_*.sql.gz"))
    real_first = history.before[0] if history.before else {}
    first_real = min(name for name in real_first if name.startswith("db_backup_2026")
                     and name.endswith(".sql.gz") and name not in fabricated)
    good_kept = {json.loads(result.stdout)["name"], first_real, *fabricated[-5:-3]}
    assert set(remaining) == good_kept | {truncated, flipped, unsigned}
    assert "damaged" in result.stderr


def test_retention_size_mode_still_catches_truncation(agent_env: dict[str, str],
                                                      history: History,
                                                      backup_dir: Path) -> None:
    fabricated = sorted(backup_dir.glob("db_backup_2026010*.sql.gz"))
    newest_before = max(backup_dir.glob("db_backup_*.sql.gz"))  # the real one, from today
    newest_before.write_bytes(b"short")
    result = run_agent(["backup", "--keep-local", "2"],
                       {**agent_env, "RETENTION_VERIFY": "size"})
    assert result.returncode == 0, result.stderr
    assert newest_before.exists()  # damaged: kept for inspection, not counted
    assert fabricated[-1].exists()  # so the newest good older one is kept instead
    assert not fabricated[-2].exists()


def test_retention_verify_rejects_unknown_modes(agent_env: dict[str, str]) -> None:
    result = run_agent(["backup"], {**agent_env, "RETENTION_VERIFY": "sometimes"})
    assert result.returncode == 2 and "RETENTION_VERIFY" in one_error_line(result.stderr)


def test_pg_dump_wrapper_is_real(pg_server: PostgresServer, tmp_path: Path) -> None:
    wrapper = pg_wrapper(tmp_path / "bin", pg_server.bin_directory, 'exec "$REAL" "$@"')
    version = subprocess.run([str(wrapper / "pg_dump"), "--version"], capture_output=True,
                             text=True, check=True)
    assert version.stdout.startswith("pg_dump (PostgreSQL) 18")

"""Failures of `backup-agent backup`: one line naming cause and fix, its exit code, nothing lost."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest
from pyrage import x25519

from testbed.postgres import PostgresServer
from testbed.s3 import REGION, running_s3_process
from tests.conftest import AGENT, run_agent
from tests.e2e.test_backup import NAME
from tests.fabricate import fabricate_agent_backups, snapshot_files
from tests.faults.table import expect


def backup_files(backup_dir: Path) -> list[str]:
    return sorted(path.name for path in backup_dir.iterdir() if NAME.match(path.name))


def assert_one_clean_line(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.startswith("backup-agent: error:")]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    assert "Traceback" not in stderr


def test_failed_dump_leaves_no_backup_file_and_prunes_nothing(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    # A role that may read everything, and a table whose rows it may not see with
    # row_security off: pg_dump writes the schema and earlier tables, then fails mid-stream.
    pg_server.psql(database, f"""
        DO $$ BEGIN CREATE ROLE dumper LOGIN PASSWORD 'dumper-password';
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;
        GRANT pg_read_all_data TO dumper;
        GRANT CONNECT ON DATABASE {database} TO dumper;
        ALTER TABLE shop.orders ENABLE ROW LEVEL SECURITY;
        CREATE POLICY visible ON shop.orders USING (amount < 500);
    """)
    fabricate_agent_backups(backup_dir, count=9)
    before = snapshot_files(backup_dir)
    agent_env.update(POSTGRES_USER="dumper", POSTGRES_PASSWORD="dumper-password",
                     KEEP_LOCAL="2")
    result = run_agent(["backup"], agent_env)
    assert result.returncode == 3
    assert_one_clean_line(result.stderr, "pg_dump failed", "row-level security")
    assert snapshot_files(backup_dir) == before  # no new file, nothing pruned, no temp file


@pytest.mark.parametrize(("change", "fragments"), [
    ({"POSTGRES_PASSWORD": "wrong-password"}, ("rejected the password", "POSTGRES_PASSWORD")),
    ({"POSTGRES_DB": "no_such_db"}, ("database 'no_such_db' does not exist", "POSTGRES_DB")),
    ({"POSTGRES_PORT": "9"}, ("cannot reach PostgreSQL", "POSTGRES_HOST/POSTGRES_PORT")),
], ids=["wrong-password", "missing-database", "unreachable"])
def test_database_errors_exit_3_with_a_fix(agent_env: dict[str, str], backup_dir: Path,
                                          change: dict[str, str],
                                          fragments: tuple[str, ...]) -> None:
    result = run_agent(["backup", "--json"], {**agent_env, **change})
    assert result.returncode == 3
    assert_one_clean_line(result.stderr, *fragments)
    assert json.loads(result.stdout)["exit_code"] == 3
    assert backup_files(backup_dir) == []


def test_pg_dump_not_found_suggests_the_container(agent_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run_agent(["backup"], {**agent_env, "PG_BINDIR": str(empty)})
    assert result.returncode == 7
    assert_one_clean_line(result.stderr, "not found", "POSTGRES_CONTAINER")


def test_missing_backup_dir_exits_4_and_names_it(agent_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_agent(["backup"], {**agent_env, "BACKUP_DIR": str(missing)})
    assert result.returncode == 4
    assert_one_clean_line(result.stderr, f"backup directory {missing} does not exist")


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "age"])
def test_disk_full_leaves_no_partial_file_and_prunes_nothing(
        encrypted: bool, agent_env: dict[str, str], backup_dir: Path) -> None:
    if encrypted:
        agent_env = {**agent_env, "ENCRYPT_TO": str(x25519.Identity.generate().to_public())}
    fabricate_agent_backups(backup_dir, count=9)
    before = snapshot_files(backup_dir)
    limit = 1024 * 1024  # the dump compresses to about 5 MiB: writing it must fail

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([str(AGENT), "backup"], env={**agent_env, "KEEP_LOCAL": "1"},
                            capture_output=True, text=True, check=False,
                            preexec_fn=limit_file_size)
    expect(result, "disk full while writing")
    assert_one_clean_line(result.stderr, "no space left", str(backup_dir))
    assert snapshot_files(backup_dir) == before


def test_second_run_is_refused_while_the_lock_is_held_and_recovers_after(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(backup_dir / '.backup-agent.lock')!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"pid " + str(os.getpid()).encode() + b", backup")
        print("locked", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        refused = run_agent(["backup"], agent_env)
        assert refused.returncode == 6
        assert_one_clean_line(refused.stderr, f"pid {holder.pid}", "holds the lock")
        assert backup_files(backup_dir) == []
    finally:
        holder.kill()  # like a crashed run: the lock file stays, the kernel lock goes
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    recovered = run_agent(["backup"], agent_env)
    assert recovered.returncode == 0, recovered.stderr
    assert len(backup_files(backup_dir)) == 1


def test_bad_keep_local_is_a_usage_error(agent_env: dict[str, str]) -> None:
    result = run_agent(["backup"], {**agent_env, "KEEP_LOCAL": "seven"})
    assert result.returncode == 2
    assert_one_clean_line(result.stderr, "KEEP_LOCAL='seven'")


def test_debug_shows_the_traceback_that_is_otherwise_hidden(agent_env: dict[str, str]) -> None:
    changed = {**agent_env, "POSTGRES_DB": "no_such_db"}
    assert "Traceback" not in run_agent(["backup"], changed).stderr
    debug = run_agent(["--debug", "backup"], changed)
    assert debug.returncode == 3
    assert "Traceback" in debug.stderr
    assert agent_env["POSTGRES_PASSWORD"] not in debug.stderr


def test_access_denied_by_iam_keeps_the_local_backup_and_exits_5(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    # A real 403: moto enforcing an IAM policy that allows listing but not writing.
    with running_s3_process() as s3:
        s3.create_bucket("locked-down")
        iam = boto3.client("iam", endpoint_url=s3.url, region_name=REGION,
                           aws_access_key_id="admin", aws_secret_access_key="admin")
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="list-only", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                           "Resource": "arn:aws:s3:::locked-down"}]}))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        s3.enforce_iam()
        environment = {**agent_env, **s3.environment(
            access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"]),
            "S3_BUCKET": "locked-down"}
        result = run_agent(["backup"], environment)
    expect(result, "access denied by the IAM policy (403)")
    assert_one_clean_line(result.stderr, "access denied", "(403)", "IAM policy")
    assert len(backup_files(backup_dir)) == 1
    assert key["SecretAccessKey"] not in result.stderr

"""What an operator meets first: flags where they type them, clear errors, a calm "no"."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from testbed.postgres import PostgresServer
from tests.conftest import answer_no_on_a_terminal, make_backup, run_agent


def test_global_flags_work_after_the_command_too(agent_env: dict[str, str]) -> None:
    result = run_agent(["backup", "--debug"], agent_env)
    assert result.returncode == 0, result.stderr
    assert "running " in result.stderr  # --debug shows each command run
    quiet = run_agent(["list", "local", "-q"], agent_env)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_a_missing_backup_directory_is_an_error_everywhere_it_is_read(
        agent_env: dict[str, str], tmp_path: Path) -> None:
    missing = {**agent_env, "BACKUP_DIR": str(tmp_path / "typo")}
    for arguments in (["list", "local"], ["list"], ["status", "--where", "local"],
                      ["restore", "latest", "--dry-run"], ["verify"], ["backup"], ["prune"],
                      ["prune", "--dry-run"], ["list", "--summary"]):
        result = run_agent(arguments, missing)
        assert result.returncode == 4, (arguments, result.stderr)
        assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_answering_no_at_the_restore_prompt_is_not_a_failure(
        agent_env: dict[str, str], pg_server: PostgresServer) -> None:
    make_backup(agent_env)
    before = pg_server.database_names()
    answered, code, text = answer_no_on_a_terminal(["restore", "latest"], agent_env)
    assert answered, text
    assert code == 0, text
    assert "restore cancelled: nothing was changed" in text and "error" not in text
    assert pg_server.database_names() == before


def test_status_speaks_in_the_units_it_was_given(agent_env: dict[str, str]) -> None:
    make_backup(agent_env)
    time.sleep(1.1)
    result = run_agent(["status", "--max-age", "1s", "--where", "local"], agent_env)
    assert result.returncode == 11
    assert "over the 1s limit" in result.stderr, result.stderr


def test_a_failed_upload_names_the_local_backup_it_kept(agent_env: dict[str, str],
                                                        backup_dir: Path) -> None:
    result = run_agent(["backup", "--json"],
                       {**agent_env, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
                        "AWS_MAX_ATTEMPTS": "1"})
    assert result.returncode == 5, result.stderr
    [kept] = backup_dir.glob("db_backup_*.sql.gz")
    assert f"the local backup {kept} is complete and kept" in result.stderr
    assert json.loads(result.stdout)["local_backup"] == str(kept)


def test_each_warning_result_and_notice_is_said_once(agent_env: dict[str, str],
                                                     backup_dir: Path) -> None:
    from tests.e2e.test_progress import run_on_terminal
    from tests.fabricate import OLDEST, write_backup

    write_backup(backup_dir, OLDEST, with_manifest=False)  # the old script's: not ours
    local_only = {name: value for name, value in agent_env.items() if name != "S3_BUCKET"}
    plain = run_agent(["backup"], local_only)
    code, drawn = run_on_terminal(["backup"], local_only, columns=80)
    assert plain.returncode == code == 0
    for output in (plain.stderr, drawn):
        assert output.count("S3_BUCKET is not set") == 1, output
        # The note about other tools' backups is prune's to say, not every backup's.
        assert "without a backup-agent manifest" not in output

    verified = run_agent(["verify", "--all", "--allow-unsigned"], agent_env)  # the old one
    assert verified.returncode == 0, verified.stderr
    results = [line for line in verified.stderr.splitlines() if line.startswith("ok: ")]
    assert len(results) == 3 and len(set(results)) == 3, verified.stderr  # two ours, one old
    assert verified.stderr.count("authenticity was not checked") == 1, verified.stderr

    pruned = run_agent(["prune"], agent_env)
    assert pruned.stderr.count("left 1 backup(s) without a backup-agent manifest alone") == 1


def test_a_name_from_list_works_from_any_directory_locally_and_from_s3(
        agent_env: dict[str, str], backup_dir: Path, tmp_path: Path) -> None:
    name = make_backup(agent_env)["name"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = run_agent(["list", "local"], agent_env, cwd=elsewhere)
    assert listed.stdout.splitlines()[1].split()[0] == name
    local = run_agent(["verify", name], agent_env, cwd=elsewhere)
    assert local.returncode == 0, local.stderr
    assert f"ok: {backup_dir / name}:" in local.stderr
    planned = run_agent(["restore", name, "--dry-run"], agent_env, cwd=elsewhere)
    assert planned.returncode == 0, planned.stderr

    for path in backup_dir.glob(f"{name}*"):  # only the bucket has it now
        path.unlink()
    url = f"s3://{agent_env['S3_BUCKET']}/backups/{name[10:14]}/{name[14:16]}/{name}"
    remote = run_agent(["verify", name, "--from", "s3"], agent_env, cwd=elsewhere)
    assert remote.returncode == 0, remote.stderr
    assert f"ok: {url}:" in remote.stderr
    planned = run_agent(["restore", name, "--from", "s3", "--dry-run"], agent_env, cwd=elsewhere)
    assert planned.returncode == 0 and url in planned.stderr, planned.stderr
    gone = run_agent(["verify", name], agent_env, cwd=elsewhere)
    assert gone.returncode == 9 and "no backup at" in gone.stderr


def test_restore_says_how_many_live_sessions_it_ended(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    import subprocess

    make_backup(agent_env)
    idle = subprocess.Popen(
        [str(pg_server.bin_directory / "psql"), "-X", "-h", pg_server.host,
         "-p", str(pg_server.port), "-U", pg_server.user, "-d", database],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PGPASSWORD": pg_server.password})
    try:
        for _ in range(50):  # until the session is there
            if pg_server.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                              f"datname = '{database}';").strip() != "0":
                break
            time.sleep(0.1)
        result = run_agent(["restore", "latest", "--yes"], agent_env)
        assert result.returncode == 0, result.stderr
        assert f"ended 1 session(s) still connected to {database}" in result.stderr
    finally:
        idle.kill()
        idle.communicate()

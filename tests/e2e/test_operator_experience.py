"""What an operator meets first: flags where they type them, clear errors, a calm "no"."""

from __future__ import annotations

import json
import os
import pty
import time
from pathlib import Path

from testbed.postgres import PostgresServer
from tests.conftest import AGENT, make_backup, run_agent


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
                      ["restore", "latest", "--dry-run"], ["verify"], ["backup"], ["prune"]):
        result = run_agent(arguments, missing)
        assert result.returncode == 4, (arguments, result.stderr)
        assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_answering_no_at_the_restore_prompt_is_not_a_failure(
        agent_env: dict[str, str], pg_server: PostgresServer) -> None:
    make_backup(agent_env)
    before = pg_server.database_names()
    pid, terminal = pty.fork()
    if pid == 0:
        os.execve(str(AGENT), [str(AGENT), "restore", "latest"],  # noqa: S606 - our CLI
                  {**agent_env, "TERM": "xterm"})
    output = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        try:
            data = os.read(terminal, 4096)
        except OSError:
            break
        if not data:
            break
        output += data
        if not answered and b"[y/N]" in output:
            os.write(terminal, b"n\n")
            answered = True
    os.close(terminal)
    _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace")
    assert answered, text
    assert os.waitstatus_to_exitcode(status) == 0, text
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

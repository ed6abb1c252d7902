"""What a person sees: bars on a terminal, plain lines in logs, nothing with --quiet.

The terminal is a real pseudo-terminal (pty): the agent cannot tell it from a person's.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import AGENT, make_backup, run_agent

BAR = "━"
ESCAPE = "\x1b"
# rich's transfer columns: "5.0/5.0 MiB" and a rate such as "12.5 MiB/s" (or "?" at first).
TRANSFER = re.compile(r"\d+\.\d/\d+\.\d MiB")


def run_on_terminal(arguments: list[str], environment: Mapping[str, str],
                    timeout: float = 120) -> tuple[int, str]:
    """Run the agent with stdin, stdout and stderr on a pty; return (exit code, output)."""
    pid, descriptor = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        os.execve(str(AGENT), [str(AGENT), *arguments],  # noqa: S606 - our CLI, argv list
                  {**environment, "COLUMNS": "120", "TERM": "xterm"})
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(descriptor, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        output += data
    os.close(descriptor)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


def test_a_terminal_gets_bars_for_dump_upload_download_and_restore(
        agent_env: dict[str, str]) -> None:
    code, backup = run_on_terminal(["backup"], agent_env)
    assert code == 0, backup
    assert BAR in backup and "dump app_" in backup and "upload to S3" in backup
    assert TRANSFER.search(backup), backup
    assert "backup success:" in backup

    code, restore = run_on_terminal(["restore", "latest", "--from", "s3", "--yes"], agent_env)
    assert code == 0, restore
    # Proven first (downloaded into a private spool), then restored from those bytes.
    assert "download + verify db_backup_" in restore and "restore db_backup_" in restore
    assert BAR in restore
    assert TRANSFER.search(restore)
    assert "restore success:" in restore

    code, verify = run_on_terminal(["verify", "--all", "--from", "s3"], agent_env)
    assert code == 0, verify
    assert "download + verify db_backup_" in verify and BAR in verify


def test_quiet_prints_nothing_on_success_even_on_a_terminal(agent_env: dict[str, str]) -> None:
    code, output = run_on_terminal(["--quiet", "backup"], agent_env)
    assert (code, output) == (0, "")
    code, output = run_on_terminal(["--quiet", "status", "--max-age", "1h"], agent_env)
    assert (code, output) == (0, "")


def test_quiet_still_shows_warnings_and_errors(agent_env: dict[str, str],
                                               tmp_path: Path) -> None:
    local_only = {name: value for name, value in agent_env.items() if name != "S3_BUCKET"}
    warned = run_agent(["--quiet", "backup"], local_only)
    assert warned.returncode == 0
    assert warned.stderr.startswith("backup-agent: S3_BUCKET is not set")
    assert len(warned.stderr.splitlines()) == 1

    failed = run_agent(["--quiet", "backup"], {**agent_env, "BACKUP_DIR": str(tmp_path / "no")})
    assert failed.returncode == 4
    assert failed.stderr.startswith("backup-agent: error: backup directory")

    empty = tmp_path / "empty"
    empty.mkdir()
    stale = run_agent(["--quiet", "status", "--where", "local"],
                      {**agent_env, "BACKUP_DIR": str(empty)})
    assert stale.returncode == 11 and "error:" in stale.stderr


def test_without_a_terminal_the_output_is_plain_lines(agent_env: dict[str, str]) -> None:
    result = run_agent(["backup"], agent_env)
    assert result.returncode == 0
    restored = run_agent(["restore", "latest", "--yes"], agent_env)
    assert restored.returncode == 0
    for output in (result.stderr, restored.stderr):
        assert ESCAPE not in output and "\r" not in output and BAR not in output
        assert all(line.startswith(("backup-agent: ", "backup success", "restore success",
                                    "  ")) for line in output.splitlines()), output


def test_json_output_is_unchanged_by_quiet(agent_env: dict[str, str]) -> None:
    report = make_backup(agent_env)
    quiet = run_agent(["--quiet", "list", "--json"], agent_env)
    assert quiet.returncode == 0 and report["name"] in quiet.stdout and quiet.stderr == ""


def test_bars_on_a_terminal_stderr_leave_json_on_stdout_clean(
        agent_env: dict[str, str]) -> None:
    """`backup-agent backup --json | jq` at a terminal: bars on stderr, pure JSON on stdout."""
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen([str(AGENT), "backup", "--json"],
                                   env={**agent_env, "COLUMNS": "120", "TERM": "xterm"},
                                   stdout=subprocess.PIPE, stderr=terminal, text=True)
        os.close(terminal)
        drawn = b""
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:
                break
            if not data:
                break
            drawn += data
        stdout, _ = process.communicate(timeout=120)
    finally:
        os.close(controller)
    assert process.returncode == 0
    assert BAR in drawn.decode("utf-8", "replace")
    assert json.loads(stdout)["status"] == "success"

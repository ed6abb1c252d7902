"""What a person sees: bars on a terminal, plain lines in logs, nothing with --quiet.

The terminal is a real pseudo-terminal (pty): the agent cannot tell it from a person's.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import AGENT, make_backup, run_agent

BAR = "━"
ESCAPE = "\x1b"
# rich's transfer columns: "5.0/5.0 MiB" and a rate such as "12.5 MiB/s" (or "?" at first).
TRANSFER = re.compile(r"\d+\.\d/\d+\.\d MiB")


def run_on_terminal(arguments: list[str], environment: Mapping[str, str],
                    timeout: float = 120, columns: int = 120) -> tuple[int, str]:
    """Run the agent with stdin, stdout and stderr on a pty `columns` wide; return (exit
    code, output)."""
    pid, descriptor = pty.fork()
    if pid == 0:  # the child: size the terminal, then exec at once
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.execve(str(AGENT), [str(AGENT), *arguments],  # noqa: S606 - our CLI, argv list
                  {**environment, "COLUMNS": str(columns), "TERM": "xterm"})
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


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# rich redraws the bars in place: back to the line start, erase, and up once per line.
REDRAW = re.compile(r"\r\x1b\[2K(?:\x1b\[1A\x1b\[2K)*")


def frames(output: str) -> list[list[str]]:
    """The screens rich drew, each as its visible lines (escape sequences removed)."""
    return [ANSI.sub("", frame).replace("\r", "").split("\n")
            for frame in REDRAW.split(output) if frame]


def test_at_80_columns_bars_fit_collapse_and_speak_binary_and_logs_stay_whole(
        agent_env: dict[str, str]) -> None:
    for _ in range(2):
        make_backup(agent_env)
    code, backup = run_on_terminal(["backup"], agent_env, columns=80)
    assert code == 0, backup
    code, verify = run_on_terminal(["verify", "--all", "--from", "s3"], agent_env, columns=80)
    assert code == 0, verify
    for output in (backup, verify):
        drawn = [frame for frame in frames(output) if any(BAR in line for line in frame)]
        assert drawn, output
        for frame in drawn:
            bars = [line for line in frame if BAR in line]
            # One line per bar, the numbers beside it; never more than a backup's two bars.
            assert len(bars) <= 2, frame
            assert all(len(line) <= 80 and re.search(r"(bytes|KiB|MiB|GiB) ", line)
                       for line in bars), frame
        rates = re.findall(r"\d (\w+)/s", ANSI.sub("", output))
        assert set(rates) <= {"B", "KiB", "MiB", "GiB"}, rates  # never MB/s
        # The bars are gone when the command ends: its summary is the last word.
        visible = ANSI.sub("", output)
        assert visible.rindex(BAR) < visible.index("success:")
    # Log lines are not cut at 80 columns: the URL and the hash stay whole, to copy.
    plain = ANSI.sub("", backup).replace("\r", "")
    name = re.search(r"backup success: (\S+) ", plain)
    assert name, plain
    key = f"backups/{name[1][10:14]}/{name[1][14:16]}/{name[1]}"
    assert f"backup-agent: uploaded to s3://{agent_env['S3_BUCKET']}/{key} while dumping " \
           "(SSE AES256, size and content confirmed)\n" in plain
    assert re.search(r"backup-agent: wrote \S+ \(\d+ bytes, sha256 [0-9a-f]{64}\)\n", plain)


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

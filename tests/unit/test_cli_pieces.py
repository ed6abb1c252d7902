"""Pure pieces of the command line: durations, plain progress lines, the JSON envelope."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from backup_agent.actions.status import parse_duration
from backup_agent.cli.boundary import exit_code_for
from backup_agent.cli.progress import PlainProgress
from backup_agent.cli.render import envelope, print_json
from backup_agent.model.errors import ConfigurationError, ExitCode, S3Error


@pytest.mark.parametrize(("text", "expected"), [("26h", timedelta(hours=26)),
                                                ("90m", timedelta(minutes=90)),
                                                ("2d", timedelta(days=2)),
                                                ("1.5h", timedelta(minutes=90))])
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_bad_duration_is_a_usage_error() -> None:
    with pytest.raises(ConfigurationError, match="26h"):
        parse_duration("a day")


def test_plain_progress_logs_bytes_rate_and_time_left(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backup_agent.cli.progress")
    task = PlainProgress(interval=0).task("restore db_backup_x.sql.gz", total=4 * 1024 ** 3)
    time.sleep(0.01)
    task.update(1024 ** 3)
    [record] = caplog.records
    assert re.fullmatch(r"restore db_backup_x\.sql\.gz: 1\.0 GiB of 4\.0 GiB \(25%\) at "
                        r"[\d.]+ [KMGT]iB/s, about \d+s left", record.getMessage())
    quiet = PlainProgress(interval=3600).task("dump", None)
    quiet.update(10)
    assert len(caplog.records) == 1  # at most one line per interval


def test_the_envelope_comes_first_and_its_keys_cannot_be_overwritten() -> None:
    document = envelope("list", warnings=["w"], data={"status": "x", "backups": []})
    assert list(document) == ["command", "status", "exit_code", "error", "warnings", "backups"]
    assert document["status"] == "warning" and document["exit_code"] == 0
    assert envelope("list", warnings=[], data={})["status"] == "success"
    failed = envelope("verify", warnings=[], data={}, exit_code=ExitCode.VERIFICATION_FAILED,
                      error="bad")
    assert (failed["status"], failed["exit_code"], failed["error"]) == ("failure", 8, "bad")


@pytest.mark.parametrize("secret", ['pa"ss\\word', "pässwörd", "line\nbreak"])
def test_secrets_are_masked_before_json_encoding(secret: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"error": f"it was {secret}!", "nested": [{"value": secret}]}, [secret])
    printed = capsys.readouterr().out
    assert json.loads(printed) == {"error": "it was ****!", "nested": [{"value": "****"}]}


def test_one_map_from_exceptions_to_exit_codes() -> None:
    assert exit_code_for(S3Error("x")) is ExitCode.S3
    assert exit_code_for(KeyboardInterrupt()) is ExitCode.INTERRUPTED
    assert exit_code_for(ValueError("bug")) is ExitCode.UNEXPECTED



def test_a_run_with_stderr_closed_still_runs() -> None:
    # faulthandler's SIGUSR1 dump needs a real stderr; without one the run goes on without it.
    agent = Path(sys.executable).with_name("backup-agent")
    result = subprocess.run(["sh", "-c", f"'{agent}' config 2>&-"], stdout=subprocess.PIPE,
                            check=False, timeout=60)
    assert result.returncode == 0
    assert b"S3_BUCKET" in result.stdout

"""The CLI surface, in process."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from backup_agent import __version__
from backup_agent.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"backup-agent {__version__}"


@pytest.mark.parametrize("variable", ["POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
                                      "POSTGRES_DB", "POSTGRES_CONTAINER", "PG_BINDIR",
                                      "BACKUP_DIR", "KEEP_LOCAL", "S3_BUCKET", "S3_PREFIX",
                                      "POSTGRES_PASSWORD", "AWS_ENDPOINT_URL_S3"])
def test_backup_help_lists_every_setting_with_its_variable(variable: str) -> None:
    result = runner.invoke(app, ["backup", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert variable in re.sub(r"\s+", " ", result.output)


def test_there_is_no_password_flag() -> None:
    result = runner.invoke(app, ["backup", "--password", "x"])
    assert result.exit_code == 2


def test_missing_backup_dir_in_process(tmp_path: object) -> None:
    result = runner.invoke(app, ["prune", "--backup-dir", "/nonexistent/backups"])
    assert result.exit_code == 4
    assert "backup directory /nonexistent/backups does not exist" in result.output

"""The CLI surface, in process."""

from __future__ import annotations

import json
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


def test_every_option_that_sets_a_variable_is_the_table_s_flag_and_names_its_default() -> None:
    """The flag, the variable and the help's "(default: ...)" all come from model.variables."""
    from typer.main import get_command

    from backup_agent.model.variables import VARIABLES

    group = get_command(app)
    commands = [group, *group.commands.values()]  # type: ignore[attr-defined]
    seen = set()
    for command in commands:
        for parameter in command.params:
            if not isinstance(parameter.envvar, str):
                continue
            variable = next(item for item in VARIABLES if item.name == parameter.envvar)
            assert variable.flag in parameter.opts, (command.name, parameter.opts)
            if "(default:" in (parameter.help or ""):
                assert variable.shown_default in parameter.help, (command.name, parameter.help)
            seen.add(variable.name)
    assert seen == {variable.name for variable in VARIABLES if variable.flag}


def test_only_typed_flags_count_as_flags_a_variable_typer_read_does_not(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path))
    monkeypatch.setenv("POSTGRES_HOST", "from-environment")
    result = runner.invoke(app, ["config", "--json", "--port", "6543"])
    assert result.exit_code == 0, result.output
    entries = {entry["name"]: entry for entry in json.loads(result.stdout)["settings"]}
    assert entries["POSTGRES_HOST"]["source"] == "environment"
    assert entries["POSTGRES_PORT"]["source"] == "flag"

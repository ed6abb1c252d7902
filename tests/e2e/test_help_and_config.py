"""Help an operator can read, and every setting discoverable: in `--help` and `config`."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path

from backup_agent.model.settings import Settings
from backup_agent.model.variables import VARIABLES
from tests.conftest import clean_environment, run_agent

README = Path(__file__).resolve().parents[2] / "README.md"
COMMANDS = ["backup", "list", "prune", "restore", "verify", "status", "doctor", "config",
            "keygen"]
BOX = re.compile(r"[│╭╮╰╯─]")
PANEL_TITLES = {"Options", "Arguments", "Commands", "Database", "Storage"}


def settings_fields(kind: type, prefix: str = "") -> list[str]:
    """Every leaf field of the settings model, as a dotted path (postgres.host, ...)."""
    hints = typing.get_type_hints(kind)
    paths = []
    for item in dataclasses.fields(kind):
        if item.metadata.get("internal"):
            continue  # the agent's own, never a variable
        if dataclasses.is_dataclass(hints[item.name]):
            paths += settings_fields(hints[item.name], f"{prefix}{item.name}.")
        else:
            paths.append(prefix + item.name)
    return paths


def help_text(arguments: list[str], columns: int) -> str:
    result = run_agent([*arguments, "--help"], {**clean_environment(), "COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_field_of_the_settings_model_has_a_documented_variable() -> None:
    covered = {path for variable in VARIABLES for path in variable.fields}
    fields = settings_fields(Settings)
    assert "postgres.lock_wait" in fields and "notify.url" in fields
    assert sorted(set(fields) - covered) == []
    assert sorted(covered - set(fields)) == []  # and no variable names a field that is gone


def test_every_variable_is_named_in_the_main_help_in_config_and_in_the_readme(
        tmp_path: Path) -> None:
    main_help = " ".join(help_text([], 80).split())
    config = run_agent(["config"], {**clean_environment(), "BACKUP_DIR": str(tmp_path)})
    assert config.returncode == 0, config.stderr
    readme_rows = {match for line in README.read_text().splitlines() if line.startswith("| `")
                   for match in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}
    for variable in VARIABLES:
        assert re.search(rf"\b{variable.name}\b", main_help), variable.name
        assert re.search(rf"^{variable.name} .*{re.escape(variable.meaning)}$", config.stdout,
                         re.MULTILINE), variable.name
        assert variable.name in readme_rows, f"{variable.name} missing from the README table"


def test_help_shows_no_bool_or_str_types_and_never_breaks_a_sentence() -> None:
    for command in [[], *([name] for name in COMMANDS)]:
        narrow = help_text(command, 80)
        assert "<bool>" not in narrow and "--port <str>" not in narrow, command
        # Wide enough that the terminal never wraps: every line left is a whole sentence,
        # a whole option row or a heading (a docstring's hard newline would end mid-way).
        for line in help_text(command, 1000).splitlines():
            text = BOX.sub("", line).strip()
            if not text or text.startswith("Usage:") or text in PANEL_TITLES:
                continue
            assert text[-1] in ".:)]", (command, text)


def test_config_names_each_value_s_source_and_masks_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "production.env"
    env_file.write_text("POSTGRES_PASSWORD=s3cret-from-file\nKEEP_LOCAL=4\nPOSTGRES_HOST=file\n")
    environment = {**clean_environment(), "POSTGRES_HOST": "db.internal",
                   "NOTIFY_URL": "https://hooks.example/very-secret-token"}
    result = run_agent(["config", "--json", "--env-file", str(env_file), "--port", "6543"],
                       environment)
    assert result.returncode == 0, result.stderr
    entries = {entry["name"]: entry for entry in json.loads(result.stdout)["settings"]}
    assert (entries["POSTGRES_PORT"]["value"], entries["POSTGRES_PORT"]["source"]) == \
        ("6543", "flag")
    assert (entries["POSTGRES_HOST"]["value"], entries["POSTGRES_HOST"]["source"]) == \
        ("db.internal", "environment")
    assert (entries["KEEP_LOCAL"]["value"], entries["KEEP_LOCAL"]["source"]) == ("4", "env file")
    assert (entries["LOCK_WAIT_TIMEOUT"]["value"], entries["LOCK_WAIT_TIMEOUT"]["source"],
            entries["LOCK_WAIT_TIMEOUT"]["default"]) == (None, "default", "5m")
    assert entries["POSTGRES_PASSWORD"]["value"] == "****"
    assert entries["NOTIFY_URL"]["value"] == "****"
    assert "s3cret-from-file" not in result.stdout + result.stderr
    assert "very-secret-token" not in result.stdout + result.stderr

    text = run_agent(["config", "--env-file", str(env_file)], environment)
    assert re.search(r"^KEEP_LOCAL +4 +env file +how many", text.stdout, re.MULTILINE)
    assert "s3cret-from-file" not in text.stdout


def test_config_refuses_a_bad_value_like_every_command() -> None:
    result = run_agent(["config"], {**clean_environment(), "LOCK_WAIT_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("backup-agent: error: LOCK_WAIT_TIMEOUT 'soon' is not a "
                                     "duration: use e.g. 26h, 90m, 2d, 30s (fix "
                                     "LOCK_WAIT_TIMEOUT)")


def test_a_usage_error_with_json_still_prints_the_envelope() -> None:
    for arguments, fragment in ((["list", "--bogus", "--json"], "No such option: --bogus"),
                                (["status", "--where", "nowhere", "--json"],
                                 "Invalid value for '--where'")):
        result = run_agent(arguments, clean_environment())
        assert result.returncode == 2, result.stderr
        report = json.loads(result.stdout)
        assert (report["command"], report["status"], report["exit_code"]) == \
            (arguments[0], "failure", 2)
        assert fragment in report["error"] and f"backup-agent {arguments[0]} --help" in \
            report["error"]
        assert fragment in result.stderr  # people still get click's own message
    plain = run_agent(["list", "--bogus"], clean_environment())
    assert plain.returncode == 2 and plain.stdout == ""

"""Settings resolve as flags > environment > --env-file > defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backup_agent.model.errors import ConfigurationError
from backup_agent.model.settings import normalize_prefix, resolve_settings


def test_defaults_follow_the_guide() -> None:
    settings = resolve_settings({}, {})
    assert settings.backup_directory == Path("/opt/dorami/backups")
    assert settings.keep_local == 7
    assert settings.s3.bucket is None
    assert settings.s3.prefix == "backups/"
    assert settings.postgres.user == "postgres"
    assert settings.postgres.database == "postgres"  # like libpq: the user's name


def test_flags_beat_environment_which_beats_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env.production"
    env_file.write_text("POSTGRES_DB=from_file\nPOSTGRES_USER=file_user\nKEEP_LOCAL=3\n"
                        "S3_BUCKET=file-bucket\nPOSTGRES_PASSWORD=file-secret\n")
    settings = resolve_settings({"POSTGRES_DB": "from_flag", "KEEP_LOCAL": None},
                                {"POSTGRES_DB": "from_env", "POSTGRES_USER": "env_user"},
                                env_file)
    assert settings.postgres.database == "from_flag"
    assert settings.postgres.user == "env_user"
    assert settings.keep_local == 3
    assert settings.s3.bucket == "file-bucket"
    assert settings.postgres.password == "file-secret"


def test_env_file_is_not_exported(tmp_path: Path) -> None:
    import os
    env_file = tmp_path / ".env"
    env_file.write_text("BACKUP_AGENT_TEST_ONLY=1\n")
    resolve_settings({}, {}, env_file)
    assert "BACKUP_AGENT_TEST_ONLY" not in os.environ


def test_aws_values_from_env_file_only_fill_gaps(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("AWS_ACCESS_KEY_ID=file-key\nAWS_SECRET_ACCESS_KEY=file-secret\n"
                        "AWS_REGION=ap-northeast-2\n")
    settings = resolve_settings({}, {"AWS_ACCESS_KEY_ID": "env-key"}, env_file)
    assert dict(settings.s3.aws_from_env_file) == {"AWS_SECRET_ACCESS_KEY": "file-secret",
                                                    "AWS_REGION": "ap-northeast-2"}


def test_password_is_never_in_repr() -> None:
    settings = resolve_settings({}, {"POSTGRES_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(settings)
    assert settings.secrets() == ["hunter2-secret"]


@pytest.mark.parametrize(("variable", "value"), [("KEEP_LOCAL", "0"), ("KEEP_LOCAL", "many"),
                                                 ("POSTGRES_PORT", "-1")])
def test_bad_numbers_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{variable}='{value}'"):
        resolve_settings({}, {variable: value})


def test_missing_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="--env-file"):
        resolve_settings({}, {}, tmp_path / "missing.env")


@pytest.mark.parametrize(("given", "expected"), [("backups/", "backups/"), ("backups", "backups/"),
                                                 ("/a/b/", "a/b/"), ("", "")])
def test_prefix_is_normalised(given: str, expected: str) -> None:
    assert normalize_prefix(given) == expected


def test_prefix_with_dot_dot_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("'..'")):
        normalize_prefix("backups/../other")


def test_the_dataclass_defaults_are_the_table_s_defaults_resolved() -> None:
    """One source: an unset variable and a field left out give the same settings."""
    from backup_agent.model.settings import PostgresSettings, S3Settings, Settings

    assert resolve_settings({}, {}) == Settings(postgres=PostgresSettings(database="postgres"),
                                                s3=S3Settings())


def test_a_default_is_parsed_like_a_value() -> None:
    from backup_agent.model.variables import named

    assert resolve_settings({}, {}).postgres.lock_wait == \
        resolve_settings({}, {"LOCK_WAIT_TIMEOUT": named("LOCK_WAIT_TIMEOUT").default}) \
        .postgres.lock_wait

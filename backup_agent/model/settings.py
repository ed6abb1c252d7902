"""Resolve configuration once: flags > environment > --env-file > defaults (the order and
the defaults are `model.variables`', which `config` and the help report from too).

The result is a frozen `Settings` that every action receives explicitly. Secrets live in
fields with `repr=False`, so a stray `print(settings)` or a traceback's locals cannot leak
them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from dotenv import dotenv_values

from backup_agent.model.age_keys import parse_recipients
from backup_agent.model.durations import parse_duration
from backup_agent.model.errors import ConfigurationError
from backup_agent.model.signing_keys import parse_trusted_keys
from backup_agent.model.variables import VARIABLES, named, setting
from backup_agent.model.wal_settings import WalSettings, resolve_wal_settings

MINIMUM_PART_SIZE_MIB = 5  # S3's smallest multipart part
# Said wherever a missing S3_BUCKET matters, each time followed by what it means there.
NO_BUCKET = "S3_BUCKET is not set"

# AWS variables an env file may supply when the process environment does not. boto3 reads
# the real environment itself; these are handed to it explicitly.
AWS_VARIABLES = tuple(variable.name for variable in VARIABLES
                      if "s3.aws_from_env_file" in variable.fields)


class NotifyMode(StrEnum):
    WEBHOOK = "webhook"  # POST {"text": ...} (Slack, Mattermost, Discord's /slack endpoint)
    HEALTHCHECKS = "healthchecks"  # GET URL/start, POST URL on success, POST URL/fail on failure


class RetentionCheck(StrEnum):
    """How retention decides that a kept backup is good (RETENTION_VERIFY)."""

    CHECKSUM = "checksum"  # read every kept backup and hash it (catches bit rot)
    SIZE = "size"  # sizes and sidecars only: cheap for very large databases


# Each text is parsed by one function, the default's (from `model.variables`) included.

def _default(variable: str) -> str:
    """Return the default of a variable that has one (the table in `model.variables`)."""
    text = named(variable).default
    assert text, f"{variable} has no default in model.variables"
    return text


def _positive_int(text: str, variable: str, *, minimum: int) -> int:
    try:
        number = int(text)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ConfigurationError(f"{variable}={text!r} is not a whole number >= {minimum}: "
                                 f"fix {variable}")
    return number


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _boolean(text: str, variable: str) -> bool:
    if text.strip().lower() in TRUE_WORDS:
        return True
    if text.strip().lower() in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{variable}={text!r} is not true or false: fix {variable}")


def normalize_prefix(prefix: str) -> str:
    """Return the S3 prefix with exactly one trailing slash ("" stays "")."""
    stripped = prefix.strip("/")
    if ".." in stripped.split("/"):
        raise ConfigurationError(f"S3_PREFIX={prefix!r} contains '..': use a plain prefix "
                                 "such as 'backups/'")
    return f"{stripped}/" if stripped else ""


def _duration(text: str, variable: str) -> timedelta:
    duration = parse_duration(text, name=variable)
    if duration.total_seconds() < 1:
        raise ConfigurationError(f"{variable}={text!r} is under a second: fix {variable} "
                                 "(e.g. 30s, 5m)")
    return duration


def _connect_timeout(text: str) -> int:
    """Whole seconds for libpq (which also reads PGCONNECT_TIMEOUT, and treats 1 as 2)."""
    return max(2, round(_duration(text, "PGCONNECT_TIMEOUT").total_seconds()))


def _notify_mode(text: str) -> NotifyMode:
    try:
        return NotifyMode(text.strip().lower())
    except ValueError:
        raise ConfigurationError(f"NOTIFY_MODE={text.strip().lower()!r} is not 'webhook' or "
                                 "'healthchecks': fix NOTIFY_MODE") from None


def _notify_on_success(text: str) -> bool:
    on = text.strip().lower()
    if on not in ("failure", "always"):
        raise ConfigurationError(f"NOTIFY_ON={on!r} is not 'failure' or 'always': fix NOTIFY_ON")
    return on == "always"


def _retention_check(text: str) -> RetentionCheck:
    try:
        return RetentionCheck(text.strip().lower())
    except ValueError:
        raise ConfigurationError(f"RETENTION_VERIFY={text!r} is not 'checksum' or 'size': "
                                 "fix RETENTION_VERIFY") from None


# Dataclass defaults are built once (not per instance), by the same parsers.
DEFAULT_NOTIFY_MODE = _notify_mode(_default("NOTIFY_MODE"))
DEFAULT_LOCK_WAIT = _duration(_default("LOCK_WAIT_TIMEOUT"), "LOCK_WAIT_TIMEOUT")
DEFAULT_RETENTION_CHECK = _retention_check(_default("RETENTION_VERIFY"))
DEFAULT_ROLLBACK_MIN_AGE = _duration(_default("ROLLBACK_MIN_AGE"), "ROLLBACK_MIN_AGE")


@dataclass(frozen=True)
class NotifySettings:
    url: str | None = field(default=None, repr=False)
    mode: NotifyMode = DEFAULT_NOTIFY_MODE
    on_success: bool = _notify_on_success(_default("NOTIFY_ON"))  # webhook mode: successes too
    timeout_seconds: float = float(_positive_int(_default("NOTIFY_TIMEOUT"), "NOTIFY_TIMEOUT",
                                                 minimum=1))


@dataclass(frozen=True)
class PostgresSettings:
    """Where the database is and how to reach it."""

    database: str
    user: str = _default("POSTGRES_USER")
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    container: str | None = None
    bin_directory: Path | None = None
    # Every wait is bounded: for a lock (pg_dump's and our own sessions'), for a connection.
    lock_wait: timedelta = DEFAULT_LOCK_WAIT
    connect_timeout_seconds: int = _connect_timeout(_default("PGCONNECT_TIMEOUT"))
    # Every client's `-c` settings, after a role's and database's own: set by the agent for
    # the private servers it starts (restore --to-time), never a user's setting.
    options: str = field(default="", metadata={"internal": True})


@dataclass(frozen=True)
class S3Settings:
    """Where backups go off-site; `bucket` None means local-only."""

    bucket: str | None = None
    prefix: str = normalize_prefix(_default("S3_PREFIX"))
    part_size_mib: int = _positive_int(_default("S3_PART_SIZE_MB"), "S3_PART_SIZE_MB",
                                       minimum=MINIMUM_PART_SIZE_MIB)
    # AWS_* values taken from --env-file because the environment lacked them.
    aws_from_env_file: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def configured(self) -> bool:
        """True when S3_BUCKET is set: the one place that decides whether S3 is in use."""
        return bool(self.bucket)


@dataclass(frozen=True)
class Settings:
    postgres: PostgresSettings
    s3: S3Settings
    backup_directory: Path = Path(_default("BACKUP_DIR"))
    keep_local: int = _positive_int(_default("KEEP_LOCAL"), "KEEP_LOCAL", minimum=1)
    # Containers stopped around a restore's swap (the guide's "stop app containers").
    app_containers: tuple[str, ...] = ()
    skip_app_stop: bool = _boolean(_default("SKIP_APP_STOP"), "SKIP_APP_STOP")
    retention_check: RetentionCheck = DEFAULT_RETENTION_CHECK
    metrics_file: Path | None = None  # Prometheus textfile, written after every backup run
    notify: NotifySettings = field(default_factory=NotifySettings)
    # age public keys (ENCRYPT_TO): when set, backups are written as .sql.gz.age.
    encrypt_to: tuple[str, ...] = ()
    # The age private key file for restore and verify (AGE_IDENTITY_FILE); never needed,
    # and best never present, on the server that makes the backups.
    identity_file: Path | None = None
    # Or the key itself (AGE_IDENTITY, environment only), as the restore-test workflow sends it.
    identity_text: str | None = field(default=None, repr=False)
    # Ed25519 private key that signs each backup's manifest (SIGNING_KEY_FILE, server only).
    signing_key_file: Path | None = None
    # Public keys whose signature restore, verify and `latest` require (TRUSTED_SIGNING_KEYS).
    trusted_signing_keys: tuple[str, ...] = ()
    # `prune --databases` leaves rollback copies younger than this unless named.
    rollback_min_age: timedelta = DEFAULT_ROLLBACK_MIN_AGE
    wal: WalSettings = field(default_factory=WalSettings)  # the WAL archive (wal stream)

    def secrets(self) -> list[str]:
        """Return every secret value in play, for masking output."""
        values = [self.postgres.password, self.s3.aws_from_env_file.get("AWS_SECRET_ACCESS_KEY"),
                  self.s3.aws_from_env_file.get("AWS_SESSION_TOKEN"), self.notify.url,
                  *(word for word in (self.identity_text or "").replace(",", " ").split()
                    if word.upper().startswith("AGE-SECRET-KEY-"))]
        return [value for value in values if value]


def read_env_file(path: Path | None) -> dict[str, str]:
    """Return the variables of a dotenv file, without touching os.environ."""
    if path is None:
        return {}
    if not path.is_file():
        raise ConfigurationError(f"env file {path} does not exist: fix the --env-file path")
    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"cannot read env file {path} ({error}): check its "
                                 "permissions and that it is UTF-8 text") from None
    return {key: value for key, value in values.items() if value is not None}


def resolve_settings(
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    env_file: Path | None = None,
) -> Settings:
    """Return the settings for one run.

    `flags` maps variable names (POSTGRES_DB, BACKUP_DIR, ...) to what was given on the
    command line, None where nothing was. Raise ConfigurationError on a bad value.
    """
    file_values = read_env_file(env_file)

    def value(variable: str, *, flag: bool = True) -> str | None:
        return setting(variable, flags if flag else {}, environ, file_values)

    def text(variable: str) -> str:  # a variable with a default is never unset
        return value(variable) or _default(variable)

    user = text("POSTGRES_USER")
    bin_directory = value("PG_BINDIR")
    postgres = PostgresSettings(
        # Like libpq, the database defaults to the user's name.
        database=value("POSTGRES_DB") or user,
        user=user,
        # Never a flag: a password on the command line would show in `ps`.
        password=value("POSTGRES_PASSWORD", flag=False),
        host=value("POSTGRES_HOST"),
        port=_positive_int(port, "POSTGRES_PORT", minimum=1)
        if (port := value("POSTGRES_PORT")) else None,
        container=value("POSTGRES_CONTAINER"),
        bin_directory=Path(bin_directory) if bin_directory else None,
        lock_wait=_duration(text("LOCK_WAIT_TIMEOUT"), "LOCK_WAIT_TIMEOUT"),
        connect_timeout_seconds=_connect_timeout(text("PGCONNECT_TIMEOUT")),
    )
    aws_from_env_file = {name: file_values[name] for name in AWS_VARIABLES
                         if name in file_values and not environ.get(name)}
    s3 = S3Settings(
        bucket=value("S3_BUCKET"),
        prefix=normalize_prefix(text("S3_PREFIX")),
        part_size_mib=_positive_int(text("S3_PART_SIZE_MB"), "S3_PART_SIZE_MB",
                                    minimum=MINIMUM_PART_SIZE_MIB),
        aws_from_env_file=aws_from_env_file,
    )
    return Settings(
        postgres=postgres,
        s3=s3,
        backup_directory=Path(text("BACKUP_DIR")),
        keep_local=_positive_int(text("KEEP_LOCAL"), "KEEP_LOCAL", minimum=1),
        app_containers=tuple((value("APP_CONTAINERS") or "").replace(",", " ").split()),
        skip_app_stop=_boolean(text("SKIP_APP_STOP"), "SKIP_APP_STOP"),
        retention_check=_retention_check(text("RETENTION_VERIFY")),
        metrics_file=Path(metrics_file) if (metrics_file := value("METRICS_FILE")) else None,
        notify=_notify_settings(value("NOTIFY_URL"), text),
        encrypt_to=parse_recipients(value("ENCRYPT_TO") or ""),
        identity_file=Path(identity) if (identity := value("AGE_IDENTITY_FILE")) else None,
        # Never a flag: a private key on the command line would show in `ps`.
        identity_text=value("AGE_IDENTITY", flag=False),
        signing_key_file=Path(key) if (key := value("SIGNING_KEY_FILE")) else None,
        trusted_signing_keys=parse_trusted_keys(value("TRUSTED_SIGNING_KEYS") or ""),
        rollback_min_age=_duration(text("ROLLBACK_MIN_AGE"), "ROLLBACK_MIN_AGE"),
        wal=resolve_wal_settings(text),
    )


def _notify_settings(url: str | None, text: Callable[[str], str]) -> NotifySettings:
    if url and not url.startswith(("https://", "http://")):
        raise ConfigurationError("NOTIFY_URL must be an http(s) URL: fix NOTIFY_URL")
    return NotifySettings(url=url, mode=_notify_mode(text("NOTIFY_MODE")),
                          on_success=_notify_on_success(text("NOTIFY_ON")),
                          timeout_seconds=float(_positive_int(text("NOTIFY_TIMEOUT"),
                                                              "NOTIFY_TIMEOUT", minimum=1)))

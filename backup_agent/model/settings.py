"""Resolve configuration once: flags > environment > --env-file > defaults (the order is
`model.variables.origin`'s, which `config` reports from too).

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
from backup_agent.model.variables import origin

DEFAULT_BACKUP_DIRECTORY = Path("/opt/dorami/backups")
DEFAULT_KEEP_LOCAL = 7
DEFAULT_S3_PREFIX = "backups/"
DEFAULT_POSTGRES_USER = "postgres"
DEFAULT_PART_SIZE_MIB = 16
MINIMUM_PART_SIZE_MIB = 5  # S3's smallest multipart part
DEFAULT_LOCK_WAIT = timedelta(minutes=5)  # a backup behind a migration's lock gives up
DEFAULT_CONNECT_TIMEOUT_SECONDS = 30  # a host that accepts TCP and never answers
DEFAULT_ROLLBACK_MIN_AGE = timedelta(hours=24)  # prune --databases leaves younger ones
# Said wherever a missing S3_BUCKET matters, each time followed by what it means there.
NO_BUCKET = "S3_BUCKET is not set"

# AWS variables an env file may supply when the process environment does not. boto3 reads
# the real environment itself; these are handed to it explicitly.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
)


class NotifyMode(StrEnum):
    WEBHOOK = "webhook"  # POST {"text": ...} (Slack, Mattermost, Discord's /slack endpoint)
    HEALTHCHECKS = "healthchecks"  # GET URL/start, POST URL on success, POST URL/fail on failure


@dataclass(frozen=True)
class NotifySettings:
    url: str | None = field(default=None, repr=False)
    mode: NotifyMode = NotifyMode.WEBHOOK
    on_success: bool = False  # webhook mode: also post successes
    timeout_seconds: float = 10.0


class RetentionCheck(StrEnum):
    """How retention decides that a kept backup is good (RETENTION_VERIFY)."""

    CHECKSUM = "checksum"  # read every kept backup and hash it (catches bit rot)
    SIZE = "size"  # sizes and sidecars only: cheap for very large databases


@dataclass(frozen=True)
class PostgresSettings:
    """Where the database is and how to reach it."""

    database: str
    user: str = DEFAULT_POSTGRES_USER
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    container: str | None = None
    bin_directory: Path | None = None
    # Every wait is bounded: for a lock (pg_dump's and our own sessions'), for a connection.
    lock_wait: timedelta = DEFAULT_LOCK_WAIT
    connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class S3Settings:
    """Where backups go off-site; `bucket` None means local-only."""

    bucket: str | None = None
    prefix: str = DEFAULT_S3_PREFIX
    part_size_mib: int = DEFAULT_PART_SIZE_MIB
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
    backup_directory: Path = DEFAULT_BACKUP_DIRECTORY
    keep_local: int = DEFAULT_KEEP_LOCAL
    # Containers stopped around a restore's swap (the guide's "stop app containers").
    app_containers: tuple[str, ...] = ()
    skip_app_stop: bool = False
    retention_check: RetentionCheck = RetentionCheck.CHECKSUM
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


def _positive_int(text: str | None, variable: str, *, minimum: int) -> int | None:
    if text is None:
        return None
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


def _boolean(text: str | None, variable: str) -> bool:
    if text is None:
        return False
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
        return origin(variable, flags if flag else {}, environ, file_values)[0]

    user = value("POSTGRES_USER") or DEFAULT_POSTGRES_USER
    bin_directory = value("PG_BINDIR")
    postgres = PostgresSettings(
        # Like libpq, the database defaults to the user's name.
        database=value("POSTGRES_DB") or user,
        user=user,
        # Never a flag: a password on the command line would show in `ps`.
        password=value("POSTGRES_PASSWORD", flag=False),
        host=value("POSTGRES_HOST"),
        port=_positive_int(value("POSTGRES_PORT"), "POSTGRES_PORT", minimum=1),
        container=value("POSTGRES_CONTAINER"),
        bin_directory=Path(bin_directory) if bin_directory else None,
        lock_wait=_duration(value("LOCK_WAIT_TIMEOUT"), "LOCK_WAIT_TIMEOUT",
                            DEFAULT_LOCK_WAIT),
        connect_timeout_seconds=_connect_timeout(value("PGCONNECT_TIMEOUT")),
    )
    aws_from_env_file = {name: file_values[name] for name in AWS_VARIABLES
                         if name in file_values and not environ.get(name)}
    s3 = S3Settings(
        bucket=value("S3_BUCKET"),
        prefix=normalize_prefix(value("S3_PREFIX") or DEFAULT_S3_PREFIX),
        part_size_mib=_positive_int(value("S3_PART_SIZE_MB"), "S3_PART_SIZE_MB",
                                    minimum=MINIMUM_PART_SIZE_MIB) or DEFAULT_PART_SIZE_MIB,
        aws_from_env_file=aws_from_env_file,
    )
    backup_directory = value("BACKUP_DIR")
    keep_local = _positive_int(value("KEEP_LOCAL"), "KEEP_LOCAL", minimum=1)
    return Settings(
        postgres=postgres,
        s3=s3,
        backup_directory=Path(backup_directory) if backup_directory else DEFAULT_BACKUP_DIRECTORY,
        keep_local=keep_local if keep_local is not None else DEFAULT_KEEP_LOCAL,
        app_containers=tuple((value("APP_CONTAINERS") or "").replace(",", " ").split()),
        skip_app_stop=_boolean(value("SKIP_APP_STOP"), "SKIP_APP_STOP"),
        retention_check=_retention_check(value("RETENTION_VERIFY")),
        metrics_file=Path(metrics_file) if (metrics_file := value("METRICS_FILE")) else None,
        notify=_notify_settings(value),
        encrypt_to=parse_recipients(value("ENCRYPT_TO") or ""),
        identity_file=Path(identity) if (identity := value("AGE_IDENTITY_FILE")) else None,
        # Never a flag: a private key on the command line would show in `ps`.
        identity_text=value("AGE_IDENTITY", flag=False),
        signing_key_file=Path(key) if (key := value("SIGNING_KEY_FILE")) else None,
        trusted_signing_keys=parse_trusted_keys(value("TRUSTED_SIGNING_KEYS") or ""),
        rollback_min_age=_duration(value("ROLLBACK_MIN_AGE"), "ROLLBACK_MIN_AGE",
                                   DEFAULT_ROLLBACK_MIN_AGE),
    )


def _duration(text: str | None, variable: str, default: timedelta) -> timedelta:
    if text is None:
        return default
    duration = parse_duration(text, name=variable)
    if duration.total_seconds() < 1:
        raise ConfigurationError(f"{variable}={text!r} is under a second: fix {variable} "
                                 "(e.g. 30s, 5m)")
    return duration


def _connect_timeout(text: str | None) -> int:
    """Whole seconds for libpq (which also reads PGCONNECT_TIMEOUT, and treats 1 as 2)."""
    if text is None:
        return DEFAULT_CONNECT_TIMEOUT_SECONDS
    return max(2, round(_duration(text, "PGCONNECT_TIMEOUT", timedelta()).total_seconds()))


def _notify_settings(value: Callable[[str], str | None]) -> NotifySettings:
    mode_text = (value("NOTIFY_MODE") or NotifyMode.WEBHOOK.value).strip().lower()
    try:
        mode = NotifyMode(mode_text)
    except ValueError:
        raise ConfigurationError(f"NOTIFY_MODE={mode_text!r} is not 'webhook' or "
                                 "'healthchecks': fix NOTIFY_MODE") from None
    on = (value("NOTIFY_ON") or "failure").strip().lower()
    if on not in ("failure", "always"):
        raise ConfigurationError(f"NOTIFY_ON={on!r} is not 'failure' or 'always': fix NOTIFY_ON")
    timeout = _positive_int(value("NOTIFY_TIMEOUT"), "NOTIFY_TIMEOUT", minimum=1)
    url = value("NOTIFY_URL")
    if url and not url.startswith(("https://", "http://")):
        raise ConfigurationError("NOTIFY_URL must be an http(s) URL: fix NOTIFY_URL")
    return NotifySettings(url=url, mode=mode, on_success=on == "always",
                          timeout_seconds=float(timeout or 10))


def _retention_check(text: str | None) -> RetentionCheck:
    if text is None:
        return RetentionCheck.CHECKSUM
    try:
        return RetentionCheck(text.strip().lower())
    except ValueError:
        raise ConfigurationError(f"RETENTION_VERIFY={text!r} is not 'checksum' or 'size': "
                                 "fix RETENTION_VERIFY") from None

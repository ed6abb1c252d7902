"""Every environment setting, once: its flag, default and meaning, and where a value came from.

The one source of truth for all four: `settings` resolves each value with `setting` (the one
precedence, flag > environment > env file > the default here), the command line builds each
option's flag, variable and "(default: ...)" from this table (`cli/options.py`), `backup-agent
--help` names each variable and `backup-agent config` prints each with its resolved value
(secrets masked), its source and this meaning. A test holds this list, the settings model,
the help and the README's table to each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from backup_agent.model.masking import MASK


class Source(StrEnum):
    FLAG = "flag"
    ENVIRONMENT = "environment"
    ENV_FILE = "env file"
    DEFAULT = "default"


@dataclass(frozen=True)
class Variable:
    name: str
    # The value an unset variable takes, parsed like any other (settings resolve it, help
    # and `config` show it); "" when unset means none.
    default: str
    meaning: str  # one line
    flag: str | None = None
    secret: bool = False
    # The Settings fields it sets, as dotted paths (a test checks every field is covered).
    fields: tuple[str, ...] = ()
    # What unset means when it is not a value the agent passes on (libpq's own default, a
    # lookup): shown like a default, never resolved.
    unset: str = ""

    @property
    def shown_default(self) -> str:
        """The default as people read it: a value, what unset means, or ""."""
        return self.default or self.unset


def _aws(name: str, meaning: str, *, secret: bool = False) -> Variable:
    return Variable(name, "", meaning, secret=secret, fields=("s3.aws_from_env_file",),
                    unset="AWS chain")


VARIABLES: tuple[Variable, ...] = (
    Variable("POSTGRES_HOST", "", "database host", "--host", fields=("postgres.host",),
             unset="local socket"),
    Variable("POSTGRES_PORT", "", "database port", "--port", fields=("postgres.port",),
             unset="5432"),  # libpq's: the agent passes no port
    Variable("POSTGRES_USER", "postgres", "database user", "--user", fields=("postgres.user",)),
    Variable("POSTGRES_PASSWORD", "", "database password (never a flag; PGPASSWORD for the "
             "clients)", secret=True, fields=("postgres.password",)),
    Variable("POSTGRES_DB", "", "the application's database", "--db",
             fields=("postgres.database",), unset="the user's name"),
    Variable("POSTGRES_CONTAINER", "", "run pg_dump/psql in this docker container",
             "--container", fields=("postgres.container",)),
    Variable("PG_BINDIR", "", "directory of pg_dump and psql", "--pg-bindir",
             fields=("postgres.bin_directory",), unset="PATH"),
    Variable("LOCK_WAIT_TIMEOUT", "5m", "longest wait for a table lock (pg_dump's and the "
             "agent's sessions'); then exit 3 naming the holder", "--lock-wait-timeout",
             fields=("postgres.lock_wait",)),
    Variable("PGCONNECT_TIMEOUT", "30", "seconds to wait for the database to answer a "
             "connection (libpq's variable)", "--connect-timeout",
             fields=("postgres.connect_timeout_seconds",)),
    Variable("BACKUP_DIR", "/opt/dorami/backups", "local backup directory (must exist)",
             "--backup-dir", fields=("backup_directory",)),
    Variable("KEEP_LOCAL", "7", "how many good local backups retention keeps", "--keep-local",
             fields=("keep_local",)),
    Variable("RETENTION_VERIFY", "checksum", "how retention proves a kept backup good: "
             "checksum or size", fields=("retention_check",)),
    Variable("ROLLBACK_MIN_AGE", "24h", "prune --databases leaves younger rollback "
             "databases unless named", "--min-age", fields=("rollback_min_age",)),
    Variable("S3_BUCKET", "", "bucket for off-site copies; unset: local only", "--s3-bucket",
             fields=("s3.bucket",)),
    Variable("S3_PREFIX", "backups/", "key prefix in the bucket", "--s3-prefix",
             fields=("s3.prefix",)),
    Variable("S3_PART_SIZE_MB", "16", "multipart upload part size in MiB (at least 5)",
             fields=("s3.part_size_mib",)),
    Variable("METRICS_FILE", "", "Prometheus textfile written after every backup",
             "--metrics-file", fields=("metrics_file",)),
    Variable("NOTIFY_URL", "", "webhook or healthchecks URL for backup and verify",
             secret=True, fields=("notify.url",)),
    Variable("NOTIFY_MODE", "webhook", "webhook (Slack-compatible) or healthchecks",
             fields=("notify.mode",)),
    Variable("NOTIFY_ON", "failure", "webhook mode: post on failure or always",
             fields=("notify.on_success",)),
    Variable("NOTIFY_TIMEOUT", "10", "seconds a notification may take",
             fields=("notify.timeout_seconds",)),
    Variable("ENCRYPT_TO", "", "age public key(s) to encrypt backups to", "--encrypt-to",
             fields=("encrypt_to",)),
    Variable("AGE_IDENTITY_FILE", "", "age private key file for restore and verify",
             "--identity", fields=("identity_file",)),
    Variable("AGE_IDENTITY", "", "the age private key itself (never a flag)", secret=True,
             fields=("identity_text",)),
    Variable("SIGNING_KEY_FILE", "", "Ed25519 key that signs each backup (server only)",
             fields=("signing_key_file",)),
    Variable("TRUSTED_SIGNING_KEYS", "", "public keys restore and verify require a "
             "signature from", fields=("trusted_signing_keys",)),
    Variable("WAL_SPOOL_DIR", "/opt/dorami/wal-spool", "wal stream: local spool of received "
             "WAL not yet in S3", fields=("wal.spool_directory",)),
    Variable("WAL_SPOOL_MAX", "2GiB", "wal stream: spool size past which it stops taking WAL "
             "and alerts", fields=("wal.spool_max_bytes",)),
    Variable("WAL_MAX_DELAY", "60s", "wal stream: longest wait before written WAL is forced "
             "into a segment (the RPO)", fields=("wal.max_delay",)),
    Variable("WAL_SLOT", "backup_agent", "physical replication slot the WAL stream uses",
             fields=("wal.slot",)),
    Variable("APP_CONTAINERS", "", "containers stopped around a restore's swap",
             "--app-containers", fields=("app_containers",)),
    Variable("SKIP_APP_STOP", "false", "restore: do not stop APP_CONTAINERS",
             "--skip-app-stop", fields=("skip_app_stop",)),
    Variable("DRY_RUN", "false", "restore: prove the backup and print the plan only",
             "--dry-run"),
    Variable("BACKUP_AGENT_ENV_FILE", "", "dotenv file read for anything still unset",
             "--env-file"),
    Variable("BACKUP_AGENT_QUIET", "false", "print only warnings and errors", "--quiet"),
    _aws("AWS_ACCESS_KEY_ID", "S3 access key (boto3's chain: instance roles work too)"),
    _aws("AWS_SECRET_ACCESS_KEY", "S3 secret key", secret=True),
    _aws("AWS_SESSION_TOKEN", "S3 session token", secret=True),
    _aws("AWS_REGION", "S3 region"),
    _aws("AWS_DEFAULT_REGION", "S3 region (older name)"),
    _aws("AWS_PROFILE", "AWS profile to use"),
    _aws("AWS_ENDPOINT_URL_S3", "S3 endpoint (MinIO, a test server)"),
    _aws("AWS_ENDPOINT_URL", "endpoint for every AWS service"),
    Variable("AWS_MAX_ATTEMPTS", "6", "S3 request attempts before giving up"),
    Variable("GITHUB_STEP_SUMMARY", "", "set by GitHub Actions: a Markdown report goes there"),
)


_BY_NAME = {variable.name: variable for variable in VARIABLES}


def named(name: str) -> Variable:
    """Return the variable called `name` (KeyError: not a setting of this agent)."""
    return _BY_NAME[name]


def origin(name: str, flags: Mapping[str, str | None], environ: Mapping[str, str],
           env_file: Mapping[str, str]) -> tuple[str | None, Source]:
    """Return a variable's value and where it came from: flag > environment > env file."""
    for value, source in ((flags.get(name), Source.FLAG), (environ.get(name), Source.ENVIRONMENT),
                          (env_file.get(name), Source.ENV_FILE)):
        if value is not None and value != "":
            return value, source
    return None, Source.DEFAULT


def setting(name: str, flags: Mapping[str, str | None], environ: Mapping[str, str],
            env_file: Mapping[str, str]) -> str | None:
    """Return the text a run uses for a variable: its `origin`, else its default (None: unset)."""
    value, _source = origin(name, flags, environ, env_file)
    return value if value is not None else named(name).default or None


@dataclass(frozen=True)
class Resolved:
    variable: Variable
    value: str | None  # secrets already masked
    source: Source

    @property
    def shown(self) -> str:
        """The value, or `(default)` / `(unset)` when nothing set it."""
        if self.value is not None:
            return self.value
        shown = self.variable.shown_default
        return f"({shown})" if shown else "(unset)"


@dataclass(frozen=True)
class Configuration:
    """What `backup-agent config` reports: every variable's value, source and meaning."""

    entries: list[Resolved]
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"settings": [{"name": entry.variable.name, "flag": entry.variable.flag,
                              "value": entry.value, "source": entry.source.value,
                              "default": entry.variable.shown_default or None,
                              "meaning": entry.variable.meaning,
                              "secret": entry.variable.secret} for entry in self.entries]}


def configuration(flags: Mapping[str, str | None], environ: Mapping[str, str],
                  env_file: Mapping[str, str]) -> Configuration:
    """Return every variable as this run would see it; secrets are shown as ****."""
    entries = []
    for variable in VARIABLES:
        value, source = origin(variable.name, flags, environ, env_file)
        if value is not None and variable.secret:
            value = MASK
        entries.append(Resolved(variable=variable, value=value, source=source))
    return Configuration(entries=entries)

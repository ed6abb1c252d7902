"""The options the commands share: one declaration each, with its variable and help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backup_agent.cli.boundary import version_callback
from backup_agent.model.backup import Place, Where

CONNECTION = "Database"
STORAGE = "Storage"

EnvFileOption = Annotated[Path | None, typer.Option(
    "--env-file", metavar="FILE", envvar="BACKUP_AGENT_ENV_FILE", rich_help_panel=CONNECTION,
    help="Dotenv file (e.g. /opt/dorami/.env.production) read for any setting the flags and "
         "environment leave unset, POSTGRES_PASSWORD and AWS keys included. Not exported.")]
HostOption = Annotated[str | None, typer.Option(
    "--host", metavar="HOST", envvar="POSTGRES_HOST", rich_help_panel=CONNECTION,
    help="Database host; unset: the local socket (or the container's).")]
PortOption = Annotated[str | None, typer.Option(
    "--port", metavar="PORT", envvar="POSTGRES_PORT", rich_help_panel=CONNECTION,
    help="Database port.")]
UserOption = Annotated[str | None, typer.Option(
    "--user", metavar="ROLE", envvar="POSTGRES_USER", rich_help_panel=CONNECTION,
    help="Database user (default: postgres). The password is read only from POSTGRES_PASSWORD "
         "(environment or --env-file), never a flag, so it stays out of `ps`.")]
DatabaseOption = Annotated[str | None, typer.Option(
    "--db", metavar="NAME", envvar="POSTGRES_DB", rich_help_panel=CONNECTION,
    help="The application's database (default: the user's name): what backup dumps, "
         "restore replaces, verify restores beside.")]
LockWaitOption = Annotated[str | None, typer.Option(
    "--lock-wait-timeout", metavar="DURATION", envvar="LOCK_WAIT_TIMEOUT",
    rich_help_panel=CONNECTION,
    help="Longest wait for a table lock, pg_dump's and the agent's own sessions' (default: 5m); "
         "then exit 3, naming the session that holds it.")]
ConnectTimeoutOption = Annotated[str | None, typer.Option(
    "--connect-timeout", metavar="SECONDS", envvar="PGCONNECT_TIMEOUT",
    rich_help_panel=CONNECTION,
    help="Longest wait for the database to answer a connection (default: 30; at least 2).")]
ContainerOption = Annotated[str | None, typer.Option(
    "--container", metavar="NAME", envvar="POSTGRES_CONTAINER", rich_help_panel=CONNECTION,
    help="Run pg_dump/psql inside this docker container (docker exec -i).")]
BinDirectoryOption = Annotated[str | None, typer.Option(
    "--pg-bindir", metavar="DIR", envvar="PG_BINDIR", rich_help_panel=CONNECTION,
    help="Directory holding pg_dump and psql (default: found on PATH); the client must not be "
         "older than the server.")]
BackupDirectoryOption = Annotated[str | None, typer.Option(
    "--backup-dir", metavar="DIR", envvar="BACKUP_DIR", rich_help_panel=STORAGE,
    help="Local backup directory (default: /opt/dorami/backups).")]
KeepLocalOption = Annotated[str | None, typer.Option(
    "--keep-local", metavar="N", envvar="KEEP_LOCAL", rich_help_panel=STORAGE,
    help="How many of the agent's backups to keep locally (default: 7).")]
BucketOption = Annotated[str | None, typer.Option(
    "--s3-bucket", metavar="BUCKET", envvar="S3_BUCKET", rich_help_panel=STORAGE,
    help="S3 bucket for off-site copies; unset: local only (with a warning). Credentials, "
         "region and endpoint come from the standard AWS variables "
         "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, ...).")]
PrefixOption = Annotated[str | None, typer.Option(
    "--s3-prefix", metavar="PREFIX", envvar="S3_PREFIX", rich_help_panel=STORAGE,
    help="Key prefix in the bucket (default: backups/).")]
SourceFromOption = Annotated[Place, typer.Option(
    "--from", help="Where `latest` and a bare name from `list` are looked up (and, for "
    "verify, --all): local or s3.")]
AppContainersOption = Annotated[str | None, typer.Option(
    "--app-containers", metavar="NAMES", envvar="APP_CONTAINERS", rich_help_panel=CONNECTION,
    help="App containers to stop around the swap and start again (comma or space separated).")]
SkipAppStopOption = Annotated[bool, typer.Option(
    "--skip-app-stop", envvar="SKIP_APP_STOP", rich_help_panel=CONNECTION,
    help="Do not stop APP_CONTAINERS (for manual runs).")]
EncryptToOption = Annotated[str | None, typer.Option(
    "--encrypt-to", envvar="ENCRYPT_TO", rich_help_panel=STORAGE, metavar="AGE_RECIPIENT",
    help="Encrypt the backup with age to this public key (age1…; several: comma separated). "
         "Writes .sql.gz.age; the private key never needs to be on this server.")]
IdentityOption = Annotated[str | None, typer.Option(
    "--identity", envvar="AGE_IDENTITY_FILE", rich_help_panel=STORAGE, metavar="FILE",
    help="age identity file (private key) to decrypt encrypted backups with.")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON result on stdout (logs stay on stderr).")]
MetricsFileOption = Annotated[str | None, typer.Option(
    "--metrics-file", metavar="FILE", envvar="METRICS_FILE", rich_help_panel=STORAGE,
    help="Prometheus textfile to update after every run (node_exporter's textfile collector).")]

# Global flags (the app's callback)
DebugOption = Annotated[bool, typer.Option(
    "--debug", help="Show tracebacks and each command run.")]
VersionOption = Annotated[bool, typer.Option(
    "--version", callback=version_callback, is_eager=True, help="Print the version and exit.")]
QuietOption = Annotated[bool, typer.Option(
    "--quiet", "-q", envvar="BACKUP_AGENT_QUIET",
    help="Print only warnings and errors (and --json or tables asked for): for cron.")]

# One command's own
ListWhereArgument = Annotated[Where, typer.Argument(help="Which backups to show.")]
KeysOption = Annotated[bool, typer.Option(
    "--keys", help="Add a column with each backup's S3 key (for restore s3://BUCKET/KEY).")]
SummaryOption = Annotated[bool, typer.Option(
    "--summary", help="Counts, total size, oldest and newest per place, and the local "
                      "backups missing from S3, instead of the table.")]
PruneDryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")]
PruneDatabasesOption = Annotated[bool, typer.Option(
    "--databases", help="Also drop <db>_pre_restore_* (the rollback copies restores keep) "
                        "and databases a crashed restore or restore test left, older than "
                        "--min-age; shows them and asks first.")]
MinAgeOption = Annotated[str | None, typer.Option(
    "--min-age", metavar="DURATION", envvar="ROLLBACK_MIN_AGE",
    help="With --databases: leave databases younger than this (default: 24h) unless named "
         "with --drop.")]
DropDatabaseOption = Annotated[list[str] | None, typer.Option(
    "--drop", metavar="NAME", help="Drop this leftover database whatever its age "
                                   "(repeatable; implies --databases).")]
RestoreSourceArgument = Annotated[str, typer.Argument(
    metavar="SOURCE", help="latest, a name as `list` prints it (from BACKUP_DIR, or the bucket "
                           "with --from s3), a file in BACKUP_DIR, or s3://BUCKET/KEY.")]
TargetDatabaseOption = Annotated[str | None, typer.Option(
    "--target-db", metavar="NAME",
    help="Restore into this new database instead (no swap, no container stops), e.g. a staging "
         "copy.")]
RestoreDryRunOption = Annotated[bool, typer.Option(
    "--dry-run", envvar="DRY_RUN", help="Verify the backup and print the plan; change nothing.")]
YesOption = Annotated[bool, typer.Option(
    "--yes", help="Do not ask (required without a terminal).")]
NoVerifyOption = Annotated[bool, typer.Option(
    "--no-verify", help="Restore even if checksum/completeness cannot be proven. Dangerous.")]
AllowUnsignedOption = Annotated[bool, typer.Option(
    "--allow-unsigned", help="Accept a backup no trusted key signed (TRUSTED_SIGNING_KEYS, or "
    "this server's own SIGNING_KEY_FILE). Its code still runs only as a powerless role.")]
NoOwnerOption = Annotated[bool, typer.Option(
    "--no-owner", help="Skip ALTER ... OWNER TO (when the dump's roles do not exist here).")]
DropPreviousOption = Annotated[bool, typer.Option(
    "--drop-previous", help="Drop the replaced database after a successful swap.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", help="Echo each SQL statement.")]
VerifySourceArgument = Annotated[str | None, typer.Argument(
    metavar="SOURCE",
    help="latest (default), a name as `list` prints it (from BACKUP_DIR, or the bucket with "
         "--from s3), a file in BACKUP_DIR, or s3://BUCKET/KEY.")]
AllBackupsOption = Annotated[bool, typer.Option(
    "--all", help="Verify every backup there (--from local or s3).")]
RestoreTestOption = Annotated[bool, typer.Option(
    "--restore-test", help="Restore into a scratch database and compare every table's row "
                           "count with the manifest; then drop it.")]
MaxAgeOption = Annotated[str, typer.Option(
    "--max-age", metavar="DURATION",
    help="Fail when the newest complete backup is older (e.g. 26h, 90m, 2d).")]
StatusWhereOption = Annotated[Where, typer.Option("--where", help="Which backups count.")]
SigningKeyOption = Annotated[bool, typer.Option(
    "--signing", help="Write an Ed25519 signing key (for SIGNING_KEY_FILE) instead of an age "
                      "key.")]
KeyFileArgument = Annotated[Path, typer.Argument(
    metavar="FILE", help="Where to write the new identity (private key) file; it must not exist.")]


def postgres_flags(host: str | None, port: str | None, user: str | None, db: str | None,
                   container: str | None, pg_bindir: str | None, lock_wait: str | None = None,
                   connect_timeout: str | None = None) -> dict[str, str | None]:
    """The connection flags, by the variable each one sets."""
    return {"POSTGRES_HOST": host, "POSTGRES_PORT": port, "POSTGRES_USER": user,
            "POSTGRES_DB": db, "POSTGRES_CONTAINER": container, "PG_BINDIR": pg_bindir,
            "LOCK_WAIT_TIMEOUT": lock_wait, "PGCONNECT_TIMEOUT": connect_timeout}


def reads_s3(place: Place) -> bool:
    return place is Place.S3

"""The options the commands share: one declaration each, with its variable and help.

An option that sets a variable takes its flag, its variable and the default its help names
from `model.variables`, the one table of settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from backup_agent.cli.boundary import version_callback
from backup_agent.model.backup import Place, Where
from backup_agent.model.variables import named

CONNECTION = "Database"
STORAGE = "Storage"


def setting_option(name: str, *short: str, text: str, metavar: str | None = None,
                   panel: str | None = None) -> Any:
    """Return the option that sets variable `name`: the table's flag (plus `short`), the
    variable itself (typer shows it in the help), and `text` with `{default}` filled in."""
    variable = named(name)
    assert variable.flag, f"{name} has no flag in model.variables"
    return typer.Option(variable.flag, *short, metavar=metavar, envvar=variable.name,
                        rich_help_panel=panel, help=text.format(default=variable.shown_default))


EnvFileOption = Annotated[Path | None, setting_option(
    "BACKUP_AGENT_ENV_FILE", metavar="FILE", panel=CONNECTION,
    text="Dotenv file (e.g. /opt/dorami/.env.production) read for any setting the flags and "
         "environment leave unset, POSTGRES_PASSWORD and AWS keys included. Not exported.")]
HostOption = Annotated[str | None, setting_option(
    "POSTGRES_HOST", metavar="HOST", panel=CONNECTION,
    text="Database host; unset: the {default} (or the container's).")]
PortOption = Annotated[str | None, setting_option(
    "POSTGRES_PORT", metavar="PORT", panel=CONNECTION, text="Database port.")]
UserOption = Annotated[str | None, setting_option(
    "POSTGRES_USER", metavar="ROLE", panel=CONNECTION,
    text="Database user (default: {default}). The password is read only from "
         "POSTGRES_PASSWORD (environment or --env-file), never a flag, so it stays out of `ps`.")]
DatabaseOption = Annotated[str | None, setting_option(
    "POSTGRES_DB", metavar="NAME", panel=CONNECTION,
    text="The application's database (default: {default}): what backup dumps, "
         "restore replaces, verify restores beside.")]
LockWaitOption = Annotated[str | None, setting_option(
    "LOCK_WAIT_TIMEOUT", metavar="DURATION", panel=CONNECTION,
    text="Longest wait for a table lock, pg_dump's and the agent's own sessions' "
         "(default: {default}); then exit 3, naming the session that holds it.")]
ConnectTimeoutOption = Annotated[str | None, setting_option(
    "PGCONNECT_TIMEOUT", metavar="SECONDS", panel=CONNECTION,
    text="Longest wait for the database to answer a connection (default: {default}; "
         "at least 2).")]
ContainerOption = Annotated[str | None, setting_option(
    "POSTGRES_CONTAINER", metavar="NAME", panel=CONNECTION,
    text="Run pg_dump/psql inside this docker container (docker exec -i).")]
BinDirectoryOption = Annotated[str | None, setting_option(
    "PG_BINDIR", metavar="DIR", panel=CONNECTION,
    text="Directory holding pg_dump and psql (default: found on {default}); the client must "
         "not be older than the server.")]
ServerBinDirectoryOption = Annotated[str | None, setting_option(
    "PG_BINDIR", metavar="DIR", panel=CONNECTION,
    text="Directory holding the server's programs (postgres, pg_ctl, pg_waldump) of the "
         "archived cluster's major version (default: found on {default}).")]
BackupDirectoryOption = Annotated[str | None, setting_option(
    "BACKUP_DIR", metavar="DIR", panel=STORAGE,
    text="Local backup directory (default: {default}).")]
KeepLocalOption = Annotated[str | None, setting_option(
    "KEEP_LOCAL", metavar="N", panel=STORAGE,
    text="How many of the agent's backups to keep locally (default: {default}).")]
BucketOption = Annotated[str | None, setting_option(
    "S3_BUCKET", metavar="BUCKET", panel=STORAGE,
    text="S3 bucket for off-site copies; unset: local only (with a warning). Credentials, "
         "region and endpoint come from the standard AWS variables "
         "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, ...).")]
PrefixOption = Annotated[str | None, setting_option(
    "S3_PREFIX", metavar="PREFIX", panel=STORAGE,
    text="Key prefix in the bucket (default: {default}).")]
SourceFromOption = Annotated[Place, typer.Option(
    "--from", help="Where `latest` and a bare name from `list` are looked up (and, for "
    "verify, --all): local or s3.")]
AppContainersOption = Annotated[str | None, setting_option(
    "APP_CONTAINERS", metavar="NAMES", panel=CONNECTION,
    text="App containers to stop around the swap and start again (comma or space separated).")]
SkipAppStopOption = Annotated[bool, setting_option(
    "SKIP_APP_STOP", panel=CONNECTION,
    text="Do not stop APP_CONTAINERS (for manual runs).")]
EncryptToOption = Annotated[str | None, setting_option(
    "ENCRYPT_TO", panel=STORAGE, metavar="AGE_RECIPIENT",
    text="Encrypt the backup with age to this public key (age1…; several: comma separated). "
         "Writes .sql.gz.age; the private key never needs to be on this server.")]
IdentityOption = Annotated[str | None, setting_option(
    "AGE_IDENTITY_FILE", panel=STORAGE, metavar="FILE",
    text="age identity file (private key) to decrypt encrypted backups with.")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON result on stdout (logs stay on stderr).")]
MetricsFileOption = Annotated[str | None, setting_option(
    "METRICS_FILE", metavar="FILE", panel=STORAGE,
    text="Prometheus textfile to update after every run (node_exporter's textfile collector).")]

# Global flags (the app's callback)
DebugOption = Annotated[bool, typer.Option(
    "--debug", help="Show tracebacks and each command run.")]
VersionOption = Annotated[bool, typer.Option(
    "--version", callback=version_callback, is_eager=True, help="Print the version and exit.")]
QuietOption = Annotated[bool, setting_option(
    "BACKUP_AGENT_QUIET", "-q",
    text="Print only warnings and errors (and --json or tables asked for): for cron.")]

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
MinAgeOption = Annotated[str | None, setting_option(
    "ROLLBACK_MIN_AGE", metavar="DURATION",
    text="With --databases: leave databases younger than this (default: {default}) unless "
         "named with --drop.")]
DropDatabaseOption = Annotated[list[str] | None, typer.Option(
    "--drop", metavar="NAME", help="Drop this leftover database whatever its age "
                                   "(repeatable; implies --databases).")]
RestoreSourceArgument = Annotated[str | None, typer.Argument(
    metavar="SOURCE", show_default=False,
    help="latest (the default), a name as `list` prints it (from BACKUP_DIR, or the bucket "
         "with --from s3), a file in BACKUP_DIR, or s3://BUCKET/KEY; none with --to-time.")]
TargetDatabaseOption = Annotated[str | None, typer.Option(
    "--target-db", metavar="NAME",
    help="Restore into this new database instead (no swap, no container stops), e.g. a staging "
         "copy.")]
RestoreDryRunOption = Annotated[bool, setting_option(
    "DRY_RUN", text="Verify the backup and print the plan; change nothing.")]
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
WalOption = Annotated[bool, typer.Option(
    "--wal", help="Verify the WAL archive and base backups in S3 instead (read-only, no "
                  "server): every timeline's segments and history files, each object's "
                  "signature; each gap named with its segments and time window.")]
DeepOption = Annotated[bool, typer.Option(
    "--deep", help="With --wal: also download, decrypt (--identity) and re-hash every "
                   "segment, parse the chain with pg_waldump and check each base backup with "
                   "pg_verifybackup.")]
MaxAgeOption = Annotated[str, typer.Option(
    "--max-age", metavar="DURATION",
    help="Fail when the newest complete backup is older (e.g. 26h, 90m, 2d).")]
StatusWhereOption = Annotated[Where, typer.Option("--where", help="Which backups count.")]
SigningKeyOption = Annotated[bool, typer.Option(
    "--signing", help="Write an Ed25519 signing key (for SIGNING_KEY_FILE) instead of an age "
                      "key.")]
KeyFileArgument = Annotated[Path, typer.Argument(
    metavar="FILE", help="Where to write the new identity (private key) file; it must not exist.")]

ToTimeOption = Annotated[str, typer.Option(
    "--to-time", metavar="TIME", help="Recover every transaction committed at or before TIME "
    "(ISO 8601 with an offset, e.g. 2026-12-02T21:05:09Z) and none after; `latest`: all the "
    "archive holds.")]
RestoreToTimeOption = Annotated[str | None, typer.Option(
    "--to-time", metavar="TIME", help="Restore the database as it was at TIME (ISO 8601 with "
    "an offset, e.g. 2026-12-02T14:03:00Z; `latest`: now) from the base backups and WAL "
    "archive in S3, instead of a backup: every transaction committed at or before TIME, "
    "none after.")]
ScratchOption = Annotated[Path | None, typer.Option(
    "--scratch", metavar="DIR", help="With --to-time: where the throwaway cluster is "
    "recovered (room for a copy of the whole cluster; default TMPDIR). As root, its owner "
    "runs the throwaway server.")]


def reads_s3(place: Place) -> bool:
    return place is Place.S3

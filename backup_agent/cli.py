"""The `backup-agent` command line: one function per command, each calling its action.

Everything the commands share (options, settings resolution, masking, error reporting,
notifications, metrics) lives in `cli_support`. Only these two modules print.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from backup_agent.actions.backup import run_backup
from backup_agent.actions.doctor import run_doctor
from backup_agent.actions.list import Where, run_list
from backup_agent.actions.prune import prune_databases, run_prune
from backup_agent.actions.restore import run_restore
from backup_agent.actions.status import parse_duration, run_status
from backup_agent.actions.verify import run_verify
from backup_agent.cli_support import (
    AppContainersOption,
    BackupDirectoryOption,
    BinDirectoryOption,
    BucketOption,
    ContainerOption,
    DatabaseOption,
    EncryptToOption,
    EnvFileOption,
    HostOption,
    IdentityOption,
    JsonOption,
    KeepLocalOption,
    MetricsFileOption,
    PortOption,
    PrefixOption,
    SkipAppStopOption,
    SourceFromOption,
    UserOption,
    confirm_restore,
    log,
    mask,
    notified,
    print_json,
    progress_display,
    record_metrics,
    reported,
    resolve,
    say,
    start_run,
    version_callback,
)
from backup_agent.encryption import generate_identity
from backup_agent.errors import ConfigurationError, DoctorFailedError, VerificationError
from backup_agent.report import (
    append_step_summary,
    backup_markdown,
    backup_summary,
    backup_table,
    restore_markdown,
    restore_summary,
    verify_markdown,
    verify_summary,
)

app = typer.Typer(
    name="backup-agent",
    help="Back up a PostgreSQL database to local disk and S3; list, prune and restore.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    # Tracebacks with locals would print passwords: we render errors ourselves.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and each command run.")]
    = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", envvar="BACKUP_AGENT_QUIET",
        help="Print only warnings and errors (and --json or tables asked for): for cron.")]
    = False,
    version: Annotated[bool, typer.Option("--version", callback=version_callback,
                                          is_eager=True, help="Print the version and exit.")]
    = False,
) -> None:
    """Back up a PostgreSQL database to local disk and S3; list, verify, restore, prune.

    Settings come from flags, then environment variables, then --env-file, then defaults.
    Exit codes: 0 ok (or warning), 1 unexpected, 2 usage/config, 3 database, 4 local storage,
    5 S3, 6 locked, 7 client tool missing or too old, 8 verification failed, 9 not found,
    10 restore failed, 11 stale (status), 12 doctor failed, 130 interrupted.
    """
    start_run(debug=debug, quiet=quiet)


@app.command()
def backup(
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    keep_local: KeepLocalOption = None, s3_bucket: BucketOption = None,
    s3_prefix: PrefixOption = None, metrics_file: MetricsFileOption = None,
    encrypt_to: EncryptToOption = None, as_json: JsonOption = False,
) -> None:
    """Dump the database, compress and checksum it, keep it locally, upload it, prune.

    Writes BACKUP_DIR/db_backup_YYYYMMDD_HHMMSS.sql.gz (.sql.gz.age with --encrypt-to) with
    .sha256 and .manifest.json sidecars; with S3_BUCKET, uploads all three to
    s3://BUCKET/PREFIX/YYYY/MM/.
    """
    with reported("backup", as_json=as_json):
        settings = resolve(
            env_file=env_file, POSTGRES_HOST=host, POSTGRES_PORT=port, POSTGRES_USER=user,
            POSTGRES_DB=db, POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir,
            BACKUP_DIR=backup_dir, KEEP_LOCAL=keep_local, S3_BUCKET=s3_bucket,
            S3_PREFIX=s3_prefix, METRICS_FILE=metrics_file, ENCRYPT_TO=encrypt_to)
        with notified(settings, "backup") as outcome:
            try:
                with progress_display() as progress:
                    result = run_backup(settings, progress=progress)
            except BaseException as error:
                record_metrics(settings, error=error)
                raise
            record_metrics(settings, duration=result.duration_seconds, size=result.size_bytes)
            outcome["summary"] = (f"backup-agent backup {result.status} on "
                                  f"{socket.gethostname()}: {result.name}, "
                                  f"{result.size_bytes} bytes, "
                                  f"{result.s3.uri if result.s3 else 'local only'}")
        say(backup_summary(result))
        append_step_summary(mask(backup_markdown(result)))
        if as_json:
            print_json({"command": "backup", **result.to_dict()})


@app.command("list")
def list_backups(
    where: Annotated[Where, typer.Argument(help="Which backups to show.")] = Where.ALL,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """List backups (local, in S3, or both), newest first."""
    with reported("list", as_json=as_json):
        settings = resolve(env_file=env_file, BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket,
                             S3_PREFIX=s3_prefix)
        result = run_list(settings, where)
        for warning in result.warnings:
            log.warning("%s", warning)
        if as_json:
            print_json({"command": "list", "where": where.value, "warnings": result.warnings,
                         "backups": [backup.to_dict() for backup in result.backups]})
        elif result.backups:
            typer.echo(backup_table(result.backups, datetime.now(UTC)))
        else:
            typer.echo(f"no backups found ({where.value})")


@app.command()
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    databases: Annotated[bool, typer.Option(
        "--databases", help="Also drop <db>_pre_restore_* (the rollback copies restores keep) "
                            "and databases a crashed restore or restore test left.")] = False,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    keep_local: KeepLocalOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, as_json: JsonOption = False,
) -> None:
    """Keep the KEEP_LOCAL newest local backups made by backup-agent; delete older ones."""
    with reported("prune", as_json=as_json):
        settings = resolve(
            env_file, BACKUP_DIR=backup_dir, KEEP_LOCAL=keep_local, POSTGRES_HOST=host,
            POSTGRES_PORT=port, POSTGRES_USER=user, POSTGRES_DB=db,
            POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir)
        doomed = run_prune(settings, dry_run=dry_run)
        dropped = prune_databases(settings, dry_run=dry_run) if databases else []
        verb = "would delete" if dry_run else "deleted"
        if as_json:
            print_json({"command": "prune", "dry_run": dry_run,
                         "deleted" if not dry_run else "would_delete":
                             [backup.name for backup in doomed],
                         "databases": dropped})
        else:
            typer.echo(f"{verb} {len(doomed)} backup(s), keeping the {settings.keep_local} "
                       "newest" + "".join(f"\n  {backup.path}" for backup in doomed))
            if databases:
                typer.echo(f"{'would drop' if dry_run else 'dropped'} {len(dropped)} "
                           "database(s)" + "".join(f"\n  {name}" for name in dropped))


@app.command()
def restore(
    source: Annotated[str, typer.Argument(
        help="latest, a backup file in BACKUP_DIR, or s3://BUCKET/KEY.")] = "latest",
    from_where: SourceFromOption = Where.LOCAL,
    target_db: Annotated[str | None, typer.Option(
        "--target-db", help="Restore into this new database instead (no swap, no container "
                            "stops), e.g. a staging copy.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", envvar="DRY_RUN", help="Verify the backup and print the plan; change "
                                            "nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (required without a "
                                                    "terminal).")] = False,
    no_verify: Annotated[bool, typer.Option(
        "--no-verify", help="Restore even if checksum/completeness cannot be proven. "
                            "Dangerous.")] = False,
    no_owner: Annotated[bool, typer.Option(
        "--no-owner", help="Skip ALTER ... OWNER TO (when the dump's roles do not exist "
                           "here).")] = False,
    drop_previous: Annotated[bool, typer.Option(
        "--drop-previous", help="Drop the replaced database after a successful swap.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Echo each SQL statement.")] = False,
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, app_containers: AppContainersOption = None,
    skip_app_stop: SkipAppStopOption = False, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    identity: IdentityOption = None, as_json: JsonOption = False,
) -> None:
    """Restore a backup safely: into a new database, proven good, then swapped in.

    The current database is kept as <db>_pre_restore_<stamp> for rollback; a failure at any
    step leaves it untouched and drops the half-built one.
    """
    with reported("restore", as_json=as_json):
        if from_where is Where.ALL:
            raise ConfigurationError("--from takes local or s3")
        settings = resolve(
            env_file, POSTGRES_HOST=host, POSTGRES_PORT=port, POSTGRES_USER=user,
            POSTGRES_DB=db, POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir,
            APP_CONTAINERS=app_containers, SKIP_APP_STOP="true" if skip_app_stop else None,
            BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix,
            AGE_IDENTITY_FILE=identity)
        # The bars start with the first transfer, after the question (if any) was answered.
        with progress_display() as progress:
            result = run_restore(
                settings, source, from_s3=from_where is Where.S3, target_db=target_db,
                dry_run=dry_run, no_verify=no_verify, no_owner=no_owner,
                drop_previous=drop_previous, verbose=verbose, progress=progress,
                confirm=lambda plan: confirm_restore(plan, yes=yes))
        say(restore_summary(result))
        append_step_summary(mask(restore_markdown(result)))
        if result.status == "dry-run" and not result.verified and not no_verify:
            raise VerificationError("the dry run found the backup unusable: the restore would "
                                    "be refused", details=result.to_dict())
        if as_json:
            print_json({"command": "restore", **result.to_dict()})


@app.command()
def verify(
    source: Annotated[str | None, typer.Argument(
        help="latest (default), a backup file in BACKUP_DIR, or s3://BUCKET/KEY.")] = None,
    from_where: SourceFromOption = Where.LOCAL,
    all_backups: Annotated[bool, typer.Option("--all", help="Verify every backup there "
                                                            "(--from local or s3).")] = False,
    restore_test: Annotated[bool, typer.Option(
        "--restore-test", help="Restore into a scratch database and compare every table's "
                               "row count with the manifest; then drop it.")] = False,
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    identity: IdentityOption = None, as_json: JsonOption = False,
) -> None:
    """Prove backups intact (checksum, gzip, closing line); --restore-test restores one.

    An encrypted backup without --identity gets its checksum proven only.
    """
    with reported("verify", as_json=as_json):
        if from_where is Where.ALL:
            raise ConfigurationError("--from takes local or s3")
        settings = resolve(
            env_file, POSTGRES_HOST=host, POSTGRES_PORT=port, POSTGRES_USER=user,
            POSTGRES_DB=db, POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir,
            BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix,
            AGE_IDENTITY_FILE=identity)
        with notified(settings, "verify"):
            with progress_display() as progress:
                result = run_verify(settings, source, from_s3=from_where is Where.S3,
                                    all_backups=all_backups, restore_test=restore_test,
                                    progress=progress)
            say(verify_summary(result))
            append_step_summary(mask(verify_markdown(result)))
            if result.status != "success":
                failed = [item.name for item in result.backups if not item.ok]
                raise VerificationError(f"verification failed for {', '.join(failed)}: see "
                                        "above; use an earlier backup and investigate",
                                        details=result.to_dict())
        if as_json:
            print_json({"command": "verify", **result.to_dict()})


@app.command()
def status(
    max_age: Annotated[str, typer.Option(
        "--max-age", help="Fail when the newest complete backup is older (e.g. 26h, 90m, 2d).")]
    = "26h",
    where: Annotated[Where, typer.Option("--where", help="Which backups count.")] = Where.ALL,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Exit 11 unless a complete backup newer than --max-age exists: a dead man's switch."""
    with reported("status", as_json=as_json):
        settings = resolve(env_file, BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket,
                             S3_PREFIX=s3_prefix)
        result = run_status(settings, max_age=parse_duration(max_age), where=where,
                            now=datetime.now(UTC))
        hours = result.age.total_seconds() / 3600
        if as_json:
            print_json({"command": "status", "status": "success", **result.newest.to_dict(),
                         "age_hours": round(hours, 2),
                         "max_age_hours": result.max_age.total_seconds() / 3600})
        else:
            say(f"ok: newest complete backup {result.newest.name} ({result.newest.where}) is "
                f"{hours:.1f} hours old", stdout=True)


@app.command()
def doctor(
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Check everything a backup needs (database, pg_dump, disk, S3, bucket), with fixes."""
    with reported("doctor", as_json=as_json):
        settings = resolve(
            env_file, POSTGRES_HOST=host, POSTGRES_PORT=port, POSTGRES_USER=user,
            POSTGRES_DB=db, POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir,
            BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix)
        result = run_doctor(settings)
        for check in result.checks:
            typer.echo(mask(f"{'PASS' if check.passed else 'FAIL'}  {check.name:<22} "
                            f"{check.detail}"), err=as_json)
        failed = [check.name for check in result.checks if not check.passed]
        if failed:
            raise DoctorFailedError(f"{len(failed)} check(s) failed: {', '.join(failed)}",
                                    details=result.to_dict())
        if as_json:
            print_json({"command": "doctor", **result.to_dict()})



@app.command()
def keygen(
    output: Annotated[Path, typer.Argument(help="Where to write the new identity (private "
                                               "key) file; it must not exist.")],
) -> None:
    """Create an age key pair for --encrypt-to; print the public key.

    Run it on your workstation, not on the database server: keep the file (mode 0600) in
    your password manager, and give the server only the printed public key (ENCRYPT_TO).
    """
    with reported("keygen", as_json=False):
        public = generate_identity(output)
        typer.echo(f"wrote the private key to {output} (keep it off the server, and safe: "
                   "without it no encrypted backup can be restored)", err=True)
        typer.echo(public)

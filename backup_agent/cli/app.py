"""The `backup-agent` command line: one function per command, each calling its action.

Options live in `options`, the run's edge (masking, errors, exit codes, notifications,
metrics) in `boundary`, text and JSON in `render`. Only the cli package prints.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import typer

from backup_agent.cli import markdown, render
from backup_agent.cli.boundary import (
    finish,
    mask,
    notified,
    progress_display,
    recording_metrics,
    reported,
    resolve,
    say,
    start_run,
)
from backup_agent.cli.help import ENVIRONMENT_HELP, TidyCommand, TidyHelpGroup
from backup_agent.cli.options import (
    AllBackupsOption,
    AllowUnsignedOption,
    AppContainersOption,
    BackupDirectoryOption,
    BinDirectoryOption,
    BucketOption,
    ConnectTimeoutOption,
    ContainerOption,
    DatabaseOption,
    DebugOption,
    DeepOption,
    DropDatabaseOption,
    DropPreviousOption,
    EncryptToOption,
    EnvFileOption,
    HostOption,
    IdentityOption,
    JsonOption,
    KeepLocalOption,
    KeysOption,
    ListWhereArgument,
    LockWaitOption,
    MetricsFileOption,
    MinAgeOption,
    NoOwnerOption,
    NoVerifyOption,
    PortOption,
    PrefixOption,
    PruneDatabasesOption,
    PruneDryRunOption,
    QuietOption,
    RestoreDryRunOption,
    RestoreSourceArgument,
    RestoreTestOption,
    RestoreToTimeOption,
    ScratchOption,
    SkipAppStopOption,
    SourceFromOption,
    SummaryOption,
    TargetDatabaseOption,
    UserOption,
    VerboseOption,
    VerifySourceArgument,
    VersionOption,
    WalOption,
    YesOption,
    reads_s3,
)
from backup_agent.cli.prompts import confirm_prune, confirm_restore, require_a_way_to_confirm
from backup_agent.model.backup import Place, Where

# Each command imports its action when it runs: `--version` and `--help` load neither
# boto3 nor pyrage, and `list local` never loads boto3.

app = typer.Typer(
    name="backup-agent",
    help="Back up a PostgreSQL database to local disk and S3; list, prune and restore.",
    epilog=ENVIRONMENT_HELP,
    cls=TidyHelpGroup,
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    # Tracebacks with locals would print passwords: we render errors ourselves.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(debug: DebugOption = False, quiet: QuietOption = False,
         version: VersionOption = False) -> None:
    """Back up a PostgreSQL database to local disk and S3; list, verify, restore, prune.

    Settings come from flags, then environment variables, then --env-file, then defaults:
    `backup-agent config` shows them all. Global flags may also follow the command.
    Exit codes: 0 ok (or warning), 1 unexpected, 2 usage/config, 3 database, 4 local storage,
    5 S3, 6 locked, 7 client tool missing or too old, 8 verification failed, 9 not found,
    10 restore failed, 11 stale (status), 12 doctor failed, 130 interrupted.
    """
    start_run(debug=debug, quiet=quiet)


@app.command(cls=TidyCommand)
def backup(
    ctx: typer.Context, env_file: EnvFileOption = None, host: HostOption = None,
    port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    keep_local: KeepLocalOption = None, s3_bucket: BucketOption = None,
    s3_prefix: PrefixOption = None, metrics_file: MetricsFileOption = None,
    encrypt_to: EncryptToOption = None, lock_wait_timeout: LockWaitOption = None,
    connect_timeout: ConnectTimeoutOption = None, as_json: JsonOption = False,
) -> None:
    """Dump the database, compress and checksum it, keep it locally, upload it, prune.

    Writes BACKUP_DIR/db_backup_YYYYMMDD_HHMMSS.sql.gz (.sql.gz.age with --encrypt-to) with
    .sha256 and .manifest.json sidecars; with S3_BUCKET, uploads all three to
    s3://BUCKET/PREFIX/YYYY/MM/.
    """
    with reported("backup", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.backup import run_backup

        with notified(settings, "backup") as notice, recording_metrics(settings) as metrics:
            with progress_display() as progress:
                result = run_backup(settings, progress=progress)
            metrics.update(duration=result.duration_seconds, size=result.size_bytes)
            notice["summary"] = (f"backup-agent backup {result.status} on "
                                 f"{socket.gethostname()}: {result.name}, "
                                 f"{result.size_bytes} bytes, "
                                 f"{result.s3.uri if result.s3 else 'local only'}")
        say(render.backup_summary(result))
        markdown.append_step_summary(mask(markdown.backup_markdown(result)))
        finish("backup", result, as_json=as_json)


@app.command("list", cls=TidyCommand)
def list_backups(
    ctx: typer.Context, where: ListWhereArgument = Where.ALL, env_file: EnvFileOption = None,
    backup_dir: BackupDirectoryOption = None, s3_bucket: BucketOption = None,
    s3_prefix: PrefixOption = None, keys: KeysOption = False, summary: SummaryOption = False,
    as_json: JsonOption = False,
) -> None:
    """List backups (local, in S3, or both), newest first: one row per backup, with where it
    is (local, s3 or local+s3)."""
    with reported("list", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.list import run_list

        result = run_list(settings, where, summary=summary)
        if not as_json:
            typer.echo(render.list_summary(result) if summary
                       else render.backup_table(result.backups, datetime.now(UTC), keys=keys)
                       if result.backups else f"no backups found ({where.value})")
        finish("list", result, as_json=as_json)


@app.command(cls=TidyCommand)
def prune(
    ctx: typer.Context, dry_run: PruneDryRunOption = False, databases: PruneDatabasesOption = False,
    min_age: MinAgeOption = None, drop: DropDatabaseOption = None, yes: YesOption = False,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    keep_local: KeepLocalOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, lock_wait_timeout: LockWaitOption = None,
    connect_timeout: ConnectTimeoutOption = None, as_json: JsonOption = False,
) -> None:
    """Keep the KEEP_LOCAL newest good local backups made by backup-agent; delete older ones.

    Damaged backups are never deleted: they are left for inspection, with a warning.
    """
    with reported("prune", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.prune import run_prune

        result = run_prune(settings, dry_run=dry_run, databases=databases or bool(drop),
                           named=tuple(drop or ()),
                           confirm=lambda plan: confirm_prune(plan, yes=yes))
        if not as_json:
            typer.echo(mask(render.prune_summary(result)))
        finish("prune", result, as_json=as_json)


@app.command(cls=TidyCommand)
def restore(
    ctx: typer.Context, source: RestoreSourceArgument = None,
    from_where: SourceFromOption = Place.LOCAL,
    target_db: TargetDatabaseOption = None, dry_run: RestoreDryRunOption = False,
    yes: YesOption = False, no_verify: NoVerifyOption = False, no_owner: NoOwnerOption = False,
    drop_previous: DropPreviousOption = False, allow_unsigned: AllowUnsignedOption = False,
    verbose: VerboseOption = False,
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, app_containers: AppContainersOption = None,
    skip_app_stop: SkipAppStopOption = False, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    identity: IdentityOption = None, lock_wait_timeout: LockWaitOption = None,
    connect_timeout: ConnectTimeoutOption = None, to_time: RestoreToTimeOption = None,
    scratch: ScratchOption = None, as_json: JsonOption = False,
) -> None:
    """Restore a backup safely: into a new database, proven good, then swapped in.

    The current database is kept as <db>_pre_restore_<stamp> for rollback; a failure at any
    step leaves it untouched and drops the half-built one. --to-time restores the database
    as it was at a moment, from the base backups and WAL archive in S3.
    """
    with reported("restore", as_json=as_json):
        from_s3 = reads_s3(from_where)
        if to_time is not None and source is not None:
            from backup_agent.model.errors import ConfigurationError

            raise ConfigurationError(f"--to-time restores from the WAL archive, not from "
                                     f"{source!r}: give --to-time or a backup, not both")
        require_a_way_to_confirm(yes=yes or dry_run)  # before hours of download, not after
        settings = resolve(ctx)
        from backup_agent.actions.restore import run_restore
        from backup_agent.catalog.backups import LATEST

        # The bars start with the first transfer, after the question (if any) was answered.
        with progress_display() as progress:
            result = run_restore(
                settings, source or LATEST, from_s3=from_s3, target_db=target_db, dry_run=dry_run,
                no_verify=no_verify, no_owner=no_owner, drop_previous=drop_previous,
                allow_unsigned=allow_unsigned, verbose=verbose, progress=progress,
                to_time=to_time, scratch=scratch,
                confirm=lambda plan: confirm_restore(plan, yes=yes))
        say(render.restore_summary(result))
        markdown.append_step_summary(mask(markdown.restore_markdown(result)))
        finish("restore", result, as_json=as_json)


@app.command(cls=TidyCommand)
def verify(
    ctx: typer.Context, source: VerifySourceArgument = None,
    from_where: SourceFromOption = Place.LOCAL,
    all_backups: AllBackupsOption = False, restore_test: RestoreTestOption = False,
    allow_unsigned: AllowUnsignedOption = False, env_file: EnvFileOption = None,
    host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    identity: IdentityOption = None, lock_wait_timeout: LockWaitOption = None,
    connect_timeout: ConnectTimeoutOption = None, wal: WalOption = False,
    deep: DeepOption = False, as_json: JsonOption = False,
) -> None:
    """Prove backups intact (checksum, gzip, closing line); --restore-test restores one.

    An encrypted backup without --identity gets its checksum proven only. --wal proves the
    WAL archive and base backups instead (--deep: download, parse, pg_verifybackup).
    """
    with reported("verify", as_json=as_json):
        from_s3 = reads_s3(from_where)
        settings = resolve(ctx)
        if wal or deep:
            from backup_agent.actions.verify_wal import run_verify_wal

            if not wal or source or all_backups or restore_test:
                from backup_agent.model.errors import ConfigurationError

                raise ConfigurationError(
                    "--deep needs --wal" if not wal else "--wal checks the whole WAL "
                    "archive: give it no SOURCE, --all or --restore-test (those verify dumps)")
            result_wal = run_verify_wal(settings, deep=deep)
            say(render.wal_verify_summary(result_wal))
            finish("verify", result_wal, as_json=as_json)
            return
        from backup_agent.actions.verify import run_verify

        with notified(settings, "verify"):
            with progress_display() as progress:
                result = run_verify(settings, source, from_s3=from_s3, all_backups=all_backups,
                                    restore_test=restore_test, allow_unsigned=allow_unsigned,
                                    progress=progress)
            say(render.verify_summary(result))
            markdown.append_step_summary(mask(markdown.verify_markdown(result)))
            finish("verify", result, as_json=as_json)

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
    confirm_restore,
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
from backup_agent.cli.options import (
    AllBackupsOption,
    AppContainersOption,
    BackupDirectoryOption,
    BinDirectoryOption,
    BucketOption,
    ContainerOption,
    DatabaseOption,
    DebugOption,
    DropPreviousOption,
    EncryptToOption,
    EnvFileOption,
    HostOption,
    IdentityOption,
    JsonOption,
    KeepLocalOption,
    KeyFileArgument,
    ListWhereArgument,
    MaxAgeOption,
    MetricsFileOption,
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
    SigningKeyOption,
    SkipAppStopOption,
    SourceFromOption,
    StatusWhereOption,
    TargetDatabaseOption,
    UserOption,
    VerboseOption,
    VerifySourceArgument,
    VersionOption,
    YesOption,
    postgres_flags,
    reads_s3,
)
from backup_agent.model.backup import Place, Where

# Each command imports its action when it runs: `--version` and `--help` load neither
# boto3 nor pyrage, and `list local` never loads boto3.

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
def main(debug: DebugOption = False, quiet: QuietOption = False,
         version: VersionOption = False) -> None:
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
            env_file, **postgres_flags(host, port, user, db, container, pg_bindir),
            BACKUP_DIR=backup_dir, KEEP_LOCAL=keep_local, S3_BUCKET=s3_bucket,
            S3_PREFIX=s3_prefix, METRICS_FILE=metrics_file, ENCRYPT_TO=encrypt_to)
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


@app.command("list")
def list_backups(
    where: ListWhereArgument = Where.ALL, env_file: EnvFileOption = None,
    backup_dir: BackupDirectoryOption = None, s3_bucket: BucketOption = None,
    s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """List backups (local, in S3, or both), newest first."""
    with reported("list", as_json=as_json):
        settings = resolve(env_file, BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket,
                           S3_PREFIX=s3_prefix)
        from backup_agent.actions.list import run_list

        result = run_list(settings, where)
        if not as_json:
            typer.echo(render.backup_table(result.backups, datetime.now(UTC)) if result.backups
                       else f"no backups found ({where.value})")
        finish("list", result, as_json=as_json)


@app.command()
def prune(
    dry_run: PruneDryRunOption = False, databases: PruneDatabasesOption = False,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    keep_local: KeepLocalOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, as_json: JsonOption = False,
) -> None:
    """Keep the KEEP_LOCAL newest local backups made by backup-agent; delete older ones."""
    with reported("prune", as_json=as_json):
        settings = resolve(env_file, **postgres_flags(host, port, user, db, container, pg_bindir),
                           BACKUP_DIR=backup_dir, KEEP_LOCAL=keep_local)
        from backup_agent.actions.prune import run_prune

        result = run_prune(settings, dry_run=dry_run, databases=databases)
        if not as_json:
            typer.echo(mask(render.prune_summary(result, databases=databases)))
        finish("prune", result, as_json=as_json)


@app.command()
def restore(
    source: RestoreSourceArgument = "latest", from_where: SourceFromOption = Place.LOCAL,
    target_db: TargetDatabaseOption = None, dry_run: RestoreDryRunOption = False,
    yes: YesOption = False, no_verify: NoVerifyOption = False, no_owner: NoOwnerOption = False,
    drop_previous: DropPreviousOption = False, verbose: VerboseOption = False,
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
        from_s3 = reads_s3(from_where)
        settings = resolve(
            env_file, **postgres_flags(host, port, user, db, container, pg_bindir),
            APP_CONTAINERS=app_containers, SKIP_APP_STOP="true" if skip_app_stop else None,
            BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix,
            AGE_IDENTITY_FILE=identity)
        from backup_agent.actions.restore import run_restore

        # The bars start with the first transfer, after the question (if any) was answered.
        with progress_display() as progress:
            result = run_restore(
                settings, source, from_s3=from_s3, target_db=target_db, dry_run=dry_run,
                no_verify=no_verify, no_owner=no_owner, drop_previous=drop_previous,
                verbose=verbose, progress=progress,
                confirm=lambda plan: confirm_restore(plan, yes=yes))
        say(render.restore_summary(result))
        markdown.append_step_summary(mask(markdown.restore_markdown(result)))
        finish("restore", result, as_json=as_json)


@app.command()
def verify(
    source: VerifySourceArgument = None, from_where: SourceFromOption = Place.LOCAL,
    all_backups: AllBackupsOption = False, restore_test: RestoreTestOption = False,
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
        from_s3 = reads_s3(from_where)
        settings = resolve(
            env_file, **postgres_flags(host, port, user, db, container, pg_bindir),
            BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix,
            AGE_IDENTITY_FILE=identity)
        from backup_agent.actions.verify import run_verify

        with notified(settings, "verify"):
            with progress_display() as progress:
                result = run_verify(settings, source, from_s3=from_s3, all_backups=all_backups,
                                    restore_test=restore_test, progress=progress)
            say(render.verify_summary(result))
            markdown.append_step_summary(mask(markdown.verify_markdown(result)))
            finish("verify", result, as_json=as_json)


@app.command()
def status(
    max_age: MaxAgeOption = "26h", where: StatusWhereOption = Where.ALL,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Exit 11 unless a complete backup newer than --max-age exists: a dead man's switch."""
    with reported("status", as_json=as_json):
        settings = resolve(env_file, BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket,
                           S3_PREFIX=s3_prefix)
        from backup_agent.actions.status import parse_duration, run_status

        result = run_status(settings, max_age=parse_duration(max_age), where=where,
                            now=datetime.now(UTC))
        if not as_json:
            say(render.status_summary(result), stdout=True)
        finish("status", result, as_json=as_json)


@app.command()
def doctor(
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Check everything a backup needs (database, pg_dump, disk, S3, bucket), with fixes."""
    with reported("doctor", as_json=as_json):
        settings = resolve(env_file, **postgres_flags(host, port, user, db, container, pg_bindir),
                           BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix)
        from backup_agent.actions.doctor import run_doctor

        result = run_doctor(settings)
        for check in result.checks:
            typer.echo(mask(f"{'PASS' if check.passed else 'FAIL'}  {check.name:<22} "
                            f"{check.detail}"), err=as_json)
        finish("doctor", result, as_json=as_json)


@app.command()
def keygen(output: KeyFileArgument, signing: SigningKeyOption = False) -> None:
    """Create a key pair; print the public key (the last line of standard output).

    An age key (default) is for --encrypt-to: keep it on your workstation, never on the
    server. A signing key (--signing) is for SIGNING_KEY_FILE: it lives only on the server;
    put its public key in TRUSTED_SIGNING_KEYS wherever backups are restored or verified.
    """
    with reported("keygen", as_json=False):
        from backup_agent.identities import create_key_file

        public, note = create_key_file(output, signing=signing)
        typer.echo(note, err=True)
        typer.echo(public)

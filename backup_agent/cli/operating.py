"""The commands for running the agent rather than its backups: status, doctor, config, keygen.

They register on the one `app` (see `app.py` for the backup commands).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import typer

from backup_agent.cli import render
from backup_agent.cli.app import app
from backup_agent.cli.boundary import finish, mask, reported, resolve, say, typed_settings
from backup_agent.cli.help import TidyCommand
from backup_agent.cli.options import (
    AppContainersOption,
    BackupDirectoryOption,
    BinDirectoryOption,
    BucketOption,
    ConnectTimeoutOption,
    ContainerOption,
    DatabaseOption,
    EncryptToOption,
    EnvFileOption,
    HostOption,
    IdentityOption,
    JsonOption,
    KeepLocalOption,
    KeyFileArgument,
    LockWaitOption,
    MaxAgeOption,
    MetricsFileOption,
    MinAgeOption,
    PortOption,
    PrefixOption,
    SigningKeyOption,
    StatusWhereOption,
    UserOption,
)
from backup_agent.model.backup import Where


@app.command(cls=TidyCommand)
def status(
    ctx: typer.Context, max_age: MaxAgeOption = "26h", where: StatusWhereOption = Where.ALL,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Exit 11 unless a complete backup newer than --max-age exists: a dead man's switch."""
    with reported("status", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.status import parse_duration, run_status

        result = run_status(settings, max_age=parse_duration(max_age), where=where,
                            now=datetime.now(UTC))
        if not as_json:
            say(render.status_summary(result), stdout=True)
        finish("status", result, as_json=as_json)


@app.command(cls=TidyCommand)
def doctor(
    ctx: typer.Context, env_file: EnvFileOption = None, host: HostOption = None,
    port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, lock_wait_timeout: LockWaitOption = None,
    connect_timeout: ConnectTimeoutOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Check everything a backup needs (database, pg_dump, disk, S3, bucket), with fixes."""
    with reported("doctor", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.doctor import run_doctor

        result = run_doctor(settings)
        for check in result.checks:
            typer.echo(mask(f"{'PASS' if check.passed else 'FAIL'}  {check.name:<22} "
                            f"{check.detail}"), err=as_json)
        finish("doctor", result, as_json=as_json)


@app.command(cls=TidyCommand)
def config(
    ctx: typer.Context, env_file: EnvFileOption = None, host: HostOption = None,
    port: PortOption = None, user: UserOption = None, db: DatabaseOption = None,
    container: ContainerOption = None, pg_bindir: BinDirectoryOption = None,
    lock_wait_timeout: LockWaitOption = None, connect_timeout: ConnectTimeoutOption = None,
    backup_dir: BackupDirectoryOption = None, keep_local: KeepLocalOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    metrics_file: MetricsFileOption = None, encrypt_to: EncryptToOption = None,
    identity: IdentityOption = None, app_containers: AppContainersOption = None,
    min_age: MinAgeOption = None, as_json: JsonOption = False,
) -> None:
    """Print every setting: its value (secrets masked), where it came from (flag,
    environment, env file or default) and what it means. Exit 2 if a value is bad."""
    with reported("config", as_json=as_json):
        from backup_agent.model.settings import read_env_file
        from backup_agent.model.variables import configuration

        resolve(ctx)  # a bad value fails here, as it would in any command
        result = configuration(typed_settings(ctx), os.environ, read_env_file(env_file))
        if not as_json:
            typer.echo(mask(render.configuration_table(result)))
        finish("config", result, as_json=as_json)


@app.command(cls=TidyCommand)
def keygen(output: KeyFileArgument, signing: SigningKeyOption = False) -> None:
    """Create a key pair; print the public key (the last line of standard output).

    An age key (default) is for --encrypt-to: keep it on your workstation, never on the
    server. A signing key (--signing) is for SIGNING_KEY_FILE: it lives only on the server;
    put its public key in TRUSTED_SIGNING_KEYS wherever backups are restored or verified.
    """
    with reported("keygen", as_json=False):
        from backup_agent.keys.key_files import create_key_file

        public, note = create_key_file(output, signing=signing)
        typer.echo(note, err=True)
        typer.echo(public)

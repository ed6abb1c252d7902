"""The `backup-agent` command line: parse, resolve settings, call an action, render.

This is the only module that prints. Errors are shown here once, as one line on stderr
with a documented exit code; a traceback only with `backup-agent --debug ...`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from backup_agent import __version__, execute
from backup_agent.actions.backup import run_backup
from backup_agent.actions.doctor import run_doctor
from backup_agent.actions.list import Where, run_list
from backup_agent.actions.prune import prune_databases, run_prune
from backup_agent.actions.restore import RestorePlan, run_restore
from backup_agent.actions.status import parse_duration, run_status
from backup_agent.actions.verify import run_verify
from backup_agent.errors import (
    BackupAgentError,
    ConfigurationError,
    ExitCode,
    InterruptedRunError,
    VerificationError,
)
from backup_agent.metrics import RunOutcome, write_metrics
from backup_agent.notify import LogTail, notify_failure, notify_start, notify_success
from backup_agent.progress import progress_for
from backup_agent.report import (
    append_step_summary,
    backup_markdown,
    backup_summary,
    backup_table,
    failure_markdown,
    restore_markdown,
    restore_summary,
    verify_markdown,
    verify_summary,
)
from backup_agent.settings import Settings, resolve_settings

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
log = logging.getLogger("backup_agent")

CONNECTION = "Database"
STORAGE = "Storage"

EnvFileOption = Annotated[Path | None, typer.Option(
    "--env-file", envvar="BACKUP_AGENT_ENV_FILE", rich_help_panel=CONNECTION,
    help="Dotenv file (e.g. /opt/dorami/.env.production) read for any setting the flags and "
         "environment leave unset, POSTGRES_PASSWORD and AWS keys included. Not exported.")]
HostOption = Annotated[str | None, typer.Option(
    "--host", envvar="POSTGRES_HOST", rich_help_panel=CONNECTION,
    help="Database host; unset: the local socket (or the container's).")]
PortOption = Annotated[str | None, typer.Option(
    "--port", envvar="POSTGRES_PORT", rich_help_panel=CONNECTION, help="Database port.")]
UserOption = Annotated[str | None, typer.Option(
    "--user", envvar="POSTGRES_USER", rich_help_panel=CONNECTION,
    help="Database user (default: postgres). The password is read only from POSTGRES_PASSWORD "
         "(environment or --env-file), never a flag, so it stays out of `ps`.")]
DatabaseOption = Annotated[str | None, typer.Option(
    "--db", envvar="POSTGRES_DB", rich_help_panel=CONNECTION,
    help="Database to back up (default: the user's name).")]
ContainerOption = Annotated[str | None, typer.Option(
    "--container", envvar="POSTGRES_CONTAINER", rich_help_panel=CONNECTION,
    help="Run pg_dump/psql inside this docker container (docker exec -i).")]
BinDirectoryOption = Annotated[str | None, typer.Option(
    "--pg-bindir", envvar="PG_BINDIR", rich_help_panel=CONNECTION,
    help="Directory holding pg_dump and psql (default: found on PATH); the client must not be "
         "older than the server.")]
BackupDirectoryOption = Annotated[str | None, typer.Option(
    "--backup-dir", envvar="BACKUP_DIR", rich_help_panel=STORAGE,
    help="Local backup directory (default: /opt/dorami/backups).")]
KeepLocalOption = Annotated[str | None, typer.Option(
    "--keep-local", envvar="KEEP_LOCAL", rich_help_panel=STORAGE,
    help="How many of the agent's backups to keep locally (default: 7).")]
BucketOption = Annotated[str | None, typer.Option(
    "--s3-bucket", envvar="S3_BUCKET", rich_help_panel=STORAGE,
    help="S3 bucket for off-site copies; unset: local only (with a warning). Credentials, "
         "region and endpoint come from the standard AWS variables "
         "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, ...).")]
PrefixOption = Annotated[str | None, typer.Option(
    "--s3-prefix", envvar="S3_PREFIX", rich_help_panel=STORAGE,
    help="Key prefix in the bucket (default: backups/).")]
SourceFromOption = Annotated[Where, typer.Option(
    "--from", help="Where `latest` (and --all) look: local or s3.")]
AppContainersOption = Annotated[str | None, typer.Option(
    "--app-containers", envvar="APP_CONTAINERS", rich_help_panel=CONNECTION,
    help="App containers to stop around the swap and start again (comma or space separated).")]
SkipAppStopOption = Annotated[bool, typer.Option(
    "--skip-app-stop", envvar="SKIP_APP_STOP", rich_help_panel=CONNECTION,
    help="Do not stop APP_CONTAINERS (for manual runs).")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON result on stdout (logs stay on stderr).")]


@dataclass
class RunState:
    debug: bool = False
    secrets: tuple[str, ...] = ()


STATE = RunState()
TAIL = LogTail()  # the last log lines, sent with a failure notification


class _MaskSecrets(logging.Filter):
    """Replace every known secret in a log record (defence in depth: none should be there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = mask(record.getMessage())
        record.msg, record.args = message, None
        return True


def mask(text: str) -> str:
    for secret in STATE.secrets:
        text = text.replace(secret, "****")
    return text


def _environment_secrets() -> list[str]:
    names = ("POSTGRES_PASSWORD", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return [os.environ[name] for name in names if os.environ.get(name)]


def _remember_secrets(settings: Settings) -> None:
    found = {*STATE.secrets, *settings.secrets(), *_environment_secrets()}
    # Longest first, so a secret that contains another is masked whole.
    STATE.secrets = tuple(sorted((secret for secret in found if len(secret) >= 4),
                                 key=len, reverse=True))


def _configure_logging(*, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("backup-agent: %(message)s"))
    handler.addFilter(_MaskSecrets())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    TAIL.addFilter(_MaskSecrets())
    log.addHandler(TAIL)
    log.setLevel(logging.DEBUG if debug else logging.INFO)


def _raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    raise InterruptedRunError(f"stopped by signal {signal.Signals(signal_number).name}: "
                              "temporary files removed, nothing published")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"backup-agent {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and each command run.")]
    = False,
    version: Annotated[bool, typer.Option("--version", callback=_version_callback,
                                          is_eager=True, help="Print the version and exit.")]
    = False,
) -> None:
    """Back up a PostgreSQL database to local disk and S3; list and prune backups.

    Settings come from flags, then environment variables, then --env-file, then defaults.
    Exit codes: 0 ok (or warning), 1 unexpected, 2 usage/config, 3 database, 4 local storage,
    5 S3, 6 locked, 7 client tool missing or too old, 130 interrupted.
    """
    STATE.debug = debug
    STATE.secrets = tuple(_environment_secrets())
    _configure_logging(debug=debug)
    signal.signal(signal.SIGTERM, _raise_interrupted)


def _settings(env_file: Path | None, **flags: str | None) -> Settings:
    settings = resolve_settings(flags, os.environ, env_file)
    _remember_secrets(settings)
    return settings


@contextmanager
def _reported(command: str, *, as_json: bool) -> Iterator[None]:
    """Turn any failure into one line on stderr (and JSON/step summary), then exit."""
    try:
        yield
    # Every failure, expected or not, ends as one line: this is the one place that shows them.
    except (BackupAgentError, KeyboardInterrupt, Exception) as error:  # noqa: BLE001
        details: dict[str, Any] = {}
        if isinstance(error, BackupAgentError):
            code, message, details = error.exit_code, str(error), error.details
        elif isinstance(error, KeyboardInterrupt):
            code, message = ExitCode.INTERRUPTED, "interrupted: temporary files removed"
        else:
            code = ExitCode.UNEXPECTED
            message = (f"unexpected {type(error).__name__}: {error} (rerun with --debug for "
                       "the traceback, and please report it)")
        message = mask(message)
        execute.stop_all_children()
        if STATE.debug:
            sys.stderr.write(mask("".join(traceback.format_exception(error))))
        typer.echo(f"backup-agent: error: {message}", err=True)
        if as_json:
            _print_json({"command": command, **details, "status": "failure",
                         "error": message, "exit_code": int(code)})
        append_step_summary(mask(failure_markdown(command, message, int(code))))
        raise typer.Exit(int(code)) from None


@contextmanager
def _notified(settings: Settings, command: str) -> Iterator[dict[str, str]]:
    """Send start/success/failure notifications around a command (if NOTIFY_URL is set)."""
    host = socket.gethostname()
    outcome = {"summary": f"backup-agent {command} succeeded on {host}"}
    notify_start(settings.notify)
    try:
        yield outcome
    except BaseException as error:
        reason = str(error) if isinstance(error, BackupAgentError) else type(error).__name__
        notify_failure(settings.notify, mask(f"backup-agent {command} failed on {host}: "
                                             f"{reason}"), mask(TAIL.text()))
        raise
    notify_success(settings.notify, mask(outcome["summary"]))


def _print_json(payload: dict[str, Any]) -> None:
    typer.echo(mask(json.dumps(payload, indent=2, default=str)))


@app.command()
def backup(
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    keep_local: KeepLocalOption = None, s3_bucket: BucketOption = None,
    s3_prefix: PrefixOption = None, metrics_file: MetricsFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dump the database, compress and checksum it, keep it locally, upload it, prune.

    Writes BACKUP_DIR/db_backup_YYYYMMDD_HHMMSS.sql.gz with .sha256 and .manifest.json
    sidecars; with S3_BUCKET, uploads all three to s3://BUCKET/PREFIX/YYYY/MM/.
    """
    with _reported("backup", as_json=as_json):
        settings = _settings(
            env_file=env_file, POSTGRES_HOST=host, POSTGRES_PORT=port, POSTGRES_USER=user,
            POSTGRES_DB=db, POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir,
            BACKUP_DIR=backup_dir, KEEP_LOCAL=keep_local, S3_BUCKET=s3_bucket,
            S3_PREFIX=s3_prefix, METRICS_FILE=metrics_file)
        with _notified(settings, "backup") as outcome:
            try:
                result = run_backup(settings)
            except BaseException as error:
                _record_metrics(settings, error=error)
                raise
            _record_metrics(settings, duration=result.duration_seconds, size=result.size_bytes)
            outcome["summary"] = (f"backup-agent backup {result.status} on "
                                  f"{socket.gethostname()}: {result.name}, "
                                  f"{result.size_bytes} bytes, "
                                  f"{result.s3.uri if result.s3 else 'local only'}")
        typer.echo(mask(backup_summary(result)), err=True)
        append_step_summary(mask(backup_markdown(result)))
        if as_json:
            _print_json({"command": "backup", **result.to_dict()})


def _record_metrics(settings: Settings, *, error: BaseException | None = None,
                    duration: float | None = None, size: int | None = None) -> None:
    """Write METRICS_FILE when configured; a metrics problem never fails the backup."""
    if settings.metrics_file is None:
        return
    if error is None:
        code = 0
    elif isinstance(error, BackupAgentError):
        code = int(error.exit_code)
    elif isinstance(error, KeyboardInterrupt):
        code = int(ExitCode.INTERRUPTED)
    else:
        code = int(ExitCode.UNEXPECTED)
    try:
        write_metrics(settings.metrics_file, RunOutcome(
            database=settings.postgres.database, finished_at=time.time(), exit_code=code,
            duration_seconds=duration, size_bytes=size))
    except (OSError, BackupAgentError) as problem:
        log.warning("could not write METRICS_FILE %s (%s)", settings.metrics_file, problem)


MetricsFileOption = Annotated[str | None, typer.Option(
    "--metrics-file", envvar="METRICS_FILE", rich_help_panel=STORAGE,
    help="Prometheus textfile to update after every run (node_exporter's textfile collector).")]


@app.command("list")
def list_backups(
    where: Annotated[Where, typer.Argument(help="Which backups to show.")] = Where.ALL,
    env_file: EnvFileOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """List backups (local, in S3, or both), newest first."""
    with _reported("list", as_json=as_json):
        settings = _settings(env_file=env_file, BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket,
                             S3_PREFIX=s3_prefix)
        result = run_list(settings, where)
        for warning in result.warnings:
            log.warning("%s", warning)
        if as_json:
            _print_json({"command": "list", "where": where.value, "warnings": result.warnings,
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
    with _reported("prune", as_json=as_json):
        settings = _settings(
            env_file, BACKUP_DIR=backup_dir, KEEP_LOCAL=keep_local, POSTGRES_HOST=host,
            POSTGRES_PORT=port, POSTGRES_USER=user, POSTGRES_DB=db,
            POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir)
        doomed = run_prune(settings, dry_run=dry_run)
        dropped = prune_databases(settings, dry_run=dry_run) if databases else []
        verb = "would delete" if dry_run else "deleted"
        if as_json:
            _print_json({"command": "prune", "dry_run": dry_run,
                         "deleted" if not dry_run else "would_delete":
                             [backup.name for backup in doomed],
                         "databases": dropped})
        else:
            typer.echo(f"{verb} {len(doomed)} backup(s), keeping the {settings.keep_local} "
                       "newest" + "".join(f"\n  {backup.path}" for backup in doomed))
            if databases:
                typer.echo(f"{'would drop' if dry_run else 'dropped'} {len(dropped)} "
                           "database(s)" + "".join(f"\n  {name}" for name in dropped))


def _confirm_restore(plan: RestorePlan, *, yes: bool) -> bool:
    """Ask on a terminal; without one, only --yes may restore (CI cannot do it by accident)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigurationError("restore changes a database and there is no terminal to ask "
                                 "on: pass --yes (or --dry-run to see the plan)")
    what = (f"replace database {plan.target} (kept as {plan.previous})" if plan.swap
            else f"create database {plan.target}")
    return typer.confirm(f"Restore {plan.source.location} and {what}?", default=False)


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
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Restore a backup safely: into a new database, proven good, then swapped in.

    The current database is kept as <db>_pre_restore_<stamp> for rollback; a failure at any
    step leaves it untouched and drops the half-built one.
    """
    with _reported("restore", as_json=as_json):
        if from_where is Where.ALL:
            raise ConfigurationError("--from takes local or s3")
        settings = _settings(
            env_file, POSTGRES_HOST=host, POSTGRES_PORT=port, POSTGRES_USER=user,
            POSTGRES_DB=db, POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir,
            APP_CONTAINERS=app_containers, SKIP_APP_STOP="true" if skip_app_stop else None,
            BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix)
        progress = progress_for("restoring")
        try:
            result = run_restore(
                settings, source, from_s3=from_where is Where.S3, target_db=target_db,
                dry_run=dry_run, no_verify=no_verify, no_owner=no_owner,
                drop_previous=drop_previous, verbose=verbose, progress=progress,
                confirm=lambda plan: _confirm_restore(plan, yes=yes))
        finally:
            if progress:
                progress.finish()
        typer.echo(mask(restore_summary(result)), err=True)
        append_step_summary(mask(restore_markdown(result)))
        if result.status == "dry-run" and not result.verified and not no_verify:
            raise VerificationError("the dry run found the backup unusable: the restore would "
                                    "be refused", details=result.to_dict())
        if as_json:
            _print_json({"command": "restore", **result.to_dict()})


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
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Prove backups intact (checksum, gzip, closing line); --restore-test restores one."""
    with _reported("verify", as_json=as_json):
        if from_where is Where.ALL:
            raise ConfigurationError("--from takes local or s3")
        settings = _settings(
            env_file, POSTGRES_HOST=host, POSTGRES_PORT=port, POSTGRES_USER=user,
            POSTGRES_DB=db, POSTGRES_CONTAINER=container, PG_BINDIR=pg_bindir,
            BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket, S3_PREFIX=s3_prefix)
        with _notified(settings, "verify"):
            result = run_verify(settings, source, from_s3=from_where is Where.S3,
                                all_backups=all_backups, restore_test=restore_test)
            typer.echo(mask(verify_summary(result)), err=True)
            append_step_summary(mask(verify_markdown(result)))
            if result.status != "success":
                failed = [item.name for item in result.backups if not item.ok]
                raise VerificationError(f"verification failed for {', '.join(failed)}: see "
                                        "above; use an earlier backup and investigate",
                                        details=result.to_dict())
        if as_json:
            _print_json({"command": "verify", **result.to_dict()})


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
    with _reported("status", as_json=as_json):
        settings = _settings(env_file, BACKUP_DIR=backup_dir, S3_BUCKET=s3_bucket,
                             S3_PREFIX=s3_prefix)
        result = run_status(settings, max_age=parse_duration(max_age), where=where,
                            now=datetime.now(UTC))
        hours = result.age.total_seconds() / 3600
        if as_json:
            _print_json({"command": "status", "status": "success", **result.newest.to_dict(),
                         "age_hours": round(hours, 2),
                         "max_age_hours": result.max_age.total_seconds() / 3600})
        else:
            typer.echo(f"ok: newest complete backup {result.newest.name} ({result.newest.where})"
                       f" is {hours:.1f} hours old")


class DoctorFailedError(BackupAgentError):
    exit_code = ExitCode.DOCTOR_FAILED


@app.command()
def doctor(
    env_file: EnvFileOption = None, host: HostOption = None, port: PortOption = None,
    user: UserOption = None, db: DatabaseOption = None, container: ContainerOption = None,
    pg_bindir: BinDirectoryOption = None, backup_dir: BackupDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None, as_json: JsonOption = False,
) -> None:
    """Check everything a backup needs (database, pg_dump, disk, S3, bucket), with fixes."""
    with _reported("doctor", as_json=as_json):
        settings = _settings(
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
            _print_json({"command": "doctor", **result.to_dict()})

"""What every `backup-agent` command shares: options, settings, masking, error reporting.

Errors are shown here once, as one line on stderr with a documented exit code; a traceback
only with `backup-agent --debug ...`. Known secrets are masked in every line that leaves.
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
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from backup_agent import __version__, execute
from backup_agent.actions.list import Where
from backup_agent.actions.restore import RestorePlan
from backup_agent.errors import (
    BackupAgentError,
    ConfigurationError,
    ExitCode,
    InterruptedRunError,
)
from backup_agent.metrics import RunOutcome, write_metrics
from backup_agent.notify import LogTail, notify_failure, notify_start, notify_success
from backup_agent.progress import NO_PROGRESS, PlainProgress, Progress, RichProgress
from backup_agent.report import (
    append_step_summary,
    failure_markdown,
)
from backup_agent.settings import Settings, resolve_settings

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
EncryptToOption = Annotated[str | None, typer.Option(
    "--encrypt-to", envvar="ENCRYPT_TO", rich_help_panel=STORAGE, metavar="AGE_RECIPIENT",
    help="Encrypt the backup with age to this public key (age1…; several: comma separated). "
         "Writes .sql.gz.age; the private key never needs to be on this server.")]
IdentityOption = Annotated[str | None, typer.Option(
    "--identity", envvar="AGE_IDENTITY_FILE", rich_help_panel=STORAGE, metavar="FILE",
    help="age identity file (private key) to decrypt encrypted backups with.")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print one JSON result on stdout (logs stay on stderr).")]


@dataclass
class RunState:
    debug: bool = False
    quiet: bool = False  # only warnings and errors (and what was asked for: --json, tables)
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


def remember_secrets(settings: Settings) -> None:
    found = {*STATE.secrets, *settings.secrets(), *_environment_secrets()}
    # Longest first, so a secret that contains another is masked whole.
    STATE.secrets = tuple(sorted((secret for secret in found if len(secret) >= 4),
                                 key=len, reverse=True))


class _CurrentStderr:
    """Whatever sys.stderr is now: while progress bars are live, rich stands in for it and
    prints log lines above the bars instead of through them."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(*, debug: bool, quiet: bool = False) -> None:
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(logging.Formatter("backup-agent: %(message)s"))
    handler.addFilter(_MaskSecrets())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    TAIL.addFilter(_MaskSecrets())
    log.addHandler(TAIL)
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


def start_run(*, debug: bool, quiet: bool = False) -> None:
    """Set up one invocation: flags, secrets to mask, logging, SIGTERM handling."""
    STATE.debug = debug
    STATE.quiet = quiet and not debug
    STATE.secrets = tuple(_environment_secrets())
    configure_logging(debug=debug, quiet=STATE.quiet)
    signal.signal(signal.SIGTERM, raise_interrupted)


def raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    raise InterruptedRunError(f"stopped by signal {signal.Signals(signal_number).name}: "
                              "temporary files removed, nothing published")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"backup-agent {__version__}")
        raise typer.Exit()


def resolve(env_file: Path | None, **flags: str | None) -> Settings:
    settings = resolve_settings(flags, os.environ, env_file)
    remember_secrets(settings)
    return settings


@contextmanager
def reported(command: str, *, as_json: bool) -> Iterator[None]:
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
            print_json({"command": command, **details, "status": "failure",
                         "error": message, "exit_code": int(code)})
        append_step_summary(mask(failure_markdown(command, message, int(code))))
        raise typer.Exit(int(code)) from None


@contextmanager
def notified(settings: Settings, command: str) -> Iterator[dict[str, str]]:
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


def say(text: str, *, stdout: bool = False) -> None:
    """Print a human summary (on stderr, unless `stdout`), unless --quiet."""
    if not STATE.quiet:
        typer.echo(mask(text), err=not stdout)


@contextmanager
def progress_display() -> Iterator[Progress]:
    """Bars on a terminal, a log line now and then elsewhere, nothing with --quiet."""
    if STATE.quiet:
        yield NO_PROGRESS
        return
    if not sys.stderr.isatty():
        yield PlainProgress()
        return
    with RichProgress() as bars:
        yield bars


def print_json(payload: dict[str, Any]) -> None:
    typer.echo(mask(json.dumps(payload, indent=2, default=str)))


def record_metrics(settings: Settings, *, error: BaseException | None = None,
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


def confirm_restore(plan: RestorePlan, *, yes: bool) -> bool:
    """Ask on a terminal; without one, only --yes may restore (CI cannot do it by accident)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigurationError("restore changes a database and there is no terminal to ask "
                                 "on: pass --yes (or --dry-run to see the plan)")
    what = (f"replace database {plan.target} (kept as {plan.previous})" if plan.swap
            else f"create database {plan.target}")
    return typer.confirm(f"Restore {plan.source.location} and {what}?", default=False)





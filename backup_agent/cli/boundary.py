"""The edge of every run: state, masking, logging, signals, and the one exception map.

Errors are shown here once, as one line on stderr with a documented exit code; a traceback
only with `backup-agent --debug ...`. Known secrets are masked in every line that leaves.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
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
from types import FrameType
from typing import Any

import typer

from backup_agent import __version__, execute
from backup_agent.cli.markdown import append_step_summary, failure_markdown
from backup_agent.cli.render import Outcome, envelope, print_json
from backup_agent.model.errors import (
    BackupAgentError,
    CancelledError,
    ExitCode,
)
from backup_agent.model.masking import masked
from backup_agent.model.progress import NO_PROGRESS, Progress
from backup_agent.model.settings import Settings, resolve_settings
from backup_agent.model.stopping import interrupted, request_stop

log = logging.getLogger("backup_agent")


@dataclass
class RunState:
    debug: bool = False
    quiet: bool = False  # only warnings and errors (and what was asked for: --json, tables)
    secrets: tuple[str, ...] = ()


STATE = RunState()


def exit_code_for(error: BaseException) -> ExitCode:
    """The one map from an exception to the documented exit code."""
    if isinstance(error, BackupAgentError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.UNEXPECTED


def message_for(error: BaseException) -> str:
    if isinstance(error, BackupAgentError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted: temporary files removed"
    return (f"unexpected {type(error).__name__}: {error} (rerun with --debug for the "
            "traceback, and please report it)")


def mask(text: str) -> str:
    return str(masked(text, STATE.secrets))


class _MaskSecrets(logging.Filter):
    """Replace every known secret in a log record (defence in depth: none should be there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = mask(record.getMessage())
        record.msg, record.args = message, None
        return True


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
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


def start_run(*, debug: bool, quiet: bool = False) -> None:
    """Set up one invocation: flags, secrets to mask, logging, SIGTERM handling."""
    STATE.debug = debug
    STATE.quiet = quiet and not debug
    STATE.secrets = tuple(_environment_secrets())
    configure_logging(debug=debug, quiet=STATE.quiet)
    signal.signal(signal.SIGTERM, raise_interrupted)
    # `kill -USR1 <pid>` prints where every thread is to stderr: for a run that hangs.
    # stderr may not be a file (closed, or captured in a test): then no dump, same run.
    with contextlib.suppress(io.UnsupportedOperation, ValueError, OSError, RuntimeError):
        faulthandler.register(signal.SIGUSR1, all_threads=True)


def raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    request_stop(signal_number)  # asked again where a library swallowed what this raises
    raise interrupted(signal_number)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"backup-agent {__version__}")
        raise typer.Exit()


def typed_settings(ctx: typer.Context) -> dict[str, str]:
    """Return the settings typed on this command line, by variable (`config` reports them as
    flags). typer also fills an option from its variable (that is how the help shows it, and
    how --quiet, --dry-run and --env-file read theirs): the settings take only what was
    typed and order the rest themselves (`model.variables.origin`)."""
    return {param.envvar: str(ctx.params[param.name]) for param in ctx.command.params
            if isinstance(param.envvar, str) and param.name is not None
            and ctx.params.get(param.name) is not None
            and getattr(ctx.get_parameter_source(param.name), "name", None) == "COMMANDLINE"}


def resolve(ctx: typer.Context) -> Settings:
    """Return this run's settings from its command line, environment and --env-file."""
    settings = resolve_settings(typed_settings(ctx), os.environ, ctx.params.get("env_file"))
    remember_secrets(settings)
    return settings


def say(text: str, *, stdout: bool = False) -> None:
    """Print a human summary (on stderr, unless `stdout`), unless --quiet."""
    if not STATE.quiet:
        typer.echo(mask(text), err=not stdout)


def emit_json(payload: dict[str, Any]) -> None:
    print_json(payload, STATE.secrets)


def finish(command: str, outcome: Outcome, *, as_json: bool) -> None:
    """End a command that ran: each warning once, then its verdict (which may fail it)."""
    failure = outcome.failure()
    if failure is not None:  # `reported` says the warnings, then the error
        failure.details = outcome.to_dict()
        failure.warned = list(outcome.warnings)
        raise failure
    for warning in outcome.warnings:
        log.warning("%s", warning)
    if as_json:
        emit_json(envelope(command, warnings=outcome.warnings, data=outcome.to_dict()))


@contextmanager
def reported(command: str, *, as_json: bool) -> Iterator[None]:
    """Turn any failure into one line on stderr (and JSON/step summary), then exit."""
    try:
        yield
    # Every failure, expected or not, ends as one line: this is the one place that shows them.
    except CancelledError as cancelled:
        say(f"backup-agent: {cancelled}")
        if as_json:
            emit_json(envelope(command, warnings=[str(cancelled)], data={"cancelled": True}))
        raise typer.Exit(int(ExitCode.OK)) from None
    except (BackupAgentError, KeyboardInterrupt, Exception) as error:  # noqa: BLE001
        code = exit_code_for(error)
        message = mask(message_for(error))
        execute.stop_all_children()
        for warning in error.warned if isinstance(error, BackupAgentError) else []:
            log.warning("%s", warning)
        if STATE.debug:
            sys.stderr.write(mask("".join(traceback.format_exception(error))))
        typer.echo(f"backup-agent: error: {message}", err=True)
        if as_json:
            details = error.details if isinstance(error, BackupAgentError) else {}
            warned = error.warned if isinstance(error, BackupAgentError) else []
            emit_json(envelope(command, warnings=warned, data=details, exit_code=code,
                               error=message))
        append_step_summary(mask(failure_markdown(command, message, int(code))))
        raise typer.Exit(int(code)) from None


@contextmanager
def notified(settings: Settings, command: str) -> Iterator[dict[str, str]]:
    """Send start/success/failure notifications around a command (if NOTIFY_URL is set)."""
    if not settings.notify.url:
        yield {}
        return
    from backup_agent.cli.notify import LogTail, notify_failure, notify_start, notify_success

    tail = LogTail()
    tail.addFilter(_MaskSecrets())
    log.addHandler(tail)
    host = socket.gethostname()
    outcome = {"summary": f"backup-agent {command} succeeded on {host}"}
    notify_start(settings.notify)
    try:
        yield outcome
    except BaseException as error:
        reason = str(error) if isinstance(error, BackupAgentError) else type(error).__name__
        notify_failure(settings.notify, mask(f"backup-agent {command} failed on {host}: "
                                             f"{reason}"), mask(tail.text()))
        raise
    finally:
        log.removeHandler(tail)
    notify_success(settings.notify, mask(outcome["summary"]))


@contextmanager
def recording_metrics(settings: Settings) -> Iterator[dict[str, float]]:
    """Write METRICS_FILE after the block, success or failure; a metrics problem only warns.

    The block puts `duration` and `size` into the yielded dict on success.
    """
    values: dict[str, float] = {}
    try:
        yield values
    except BaseException as error:
        _write_metrics(settings, int(exit_code_for(error)), {})
        raise
    _write_metrics(settings, 0, values)


def _write_metrics(settings: Settings, code: int, values: dict[str, float]) -> None:
    if settings.metrics_file is None:
        return
    from backup_agent.cli.metrics import RunOutcome, write_metrics

    try:
        write_metrics(settings.metrics_file, RunOutcome(
            database=settings.postgres.database, finished_at=time.time(), exit_code=code,
            duration_seconds=values.get("duration"),
            size_bytes=int(values["size"]) if "size" in values else None))
    except (OSError, BackupAgentError) as problem:
        log.warning("could not write METRICS_FILE %s (%s)", settings.metrics_file, problem)


@contextmanager
def progress_display() -> Iterator[Progress]:
    """Bars on a terminal, a log line now and then elsewhere, nothing with --quiet."""
    if STATE.quiet:
        yield NO_PROGRESS
        return
    if not sys.stderr.isatty():
        from backup_agent.cli.progress import PlainProgress

        yield PlainProgress()
        return
    from backup_agent.cli.bars import RichProgress

    with RichProgress() as bars:
        yield bars

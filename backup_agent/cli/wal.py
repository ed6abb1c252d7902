"""`backup-agent wal ...`: the WAL archive's commands (stream; setup), on the one `app`."""

from __future__ import annotations

import logging

import typer

from backup_agent.cli.app import app
from backup_agent.cli.boundary import finish, mask, notified, reported, resolve
from backup_agent.cli.help import TidyCommand, TidyHelpGroup
from backup_agent.cli.options import (
    BinDirectoryOption,
    BucketOption,
    ConnectTimeoutOption,
    DatabaseOption,
    EncryptToOption,
    EnvFileOption,
    HostOption,
    JsonOption,
    PortOption,
    PrefixOption,
    UserOption,
)

log = logging.getLogger("backup_agent")

wal_app = typer.Typer(name="wal", cls=TidyHelpGroup, no_args_is_help=True,
                      help="The WAL archive for point-in-time recovery: set up, stream.")
app.add_typer(wal_app, name="wal")


@wal_app.command(cls=TidyCommand)
def stream(
    ctx: typer.Context, env_file: EnvFileOption = None, host: HostOption = None,
    port: PortOption = None, user: UserOption = None, db: DatabaseOption = None,
    pg_bindir: BinDirectoryOption = None, connect_timeout: ConnectTimeoutOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    encrypt_to: EncryptToOption = None, as_json: JsonOption = False,
) -> None:
    """Receive WAL from the slot (pg_receivewal) and archive each segment to S3, until stopped.

    Runs in the foreground, as a service: SIGTERM stops it (exit 130) and pg_receivewal with
    it. Each complete segment is compressed, encrypted (ENCRYPT_TO), signed
    (SIGNING_KEY_FILE) and stored create-only under wal/<system id>/<timeline>/. WAL that
    waits longer than WAL_MAX_DELAY is closed with pg_switch_wal(). Past WAL_SPOOL_MAX it
    stops taking WAL and alerts; a lost slot ends it (exit 3).
    """
    with reported("wal stream", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.wal import run_wal_stream

        def alarm(text: str) -> None:
            if settings.notify.url:
                from backup_agent.cli.notify import notify_failure

                notify_failure(settings.notify, mask(f"backup-agent wal stream: {text}"), "")

        with notified(settings, "wal stream"):
            result = run_wal_stream(settings, on_alarm=alarm,
                                    warn=lambda text: log.warning("%s", text))
        result.warnings = []  # said when they happened: the stream runs for months
        finish("wal stream", result, as_json=as_json)

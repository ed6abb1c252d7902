"""The WAL archive's commands on the one `app`: `wal stream`, `wal setup`, `base-backup`."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from backup_agent.cli.app import app
from backup_agent.cli.boundary import (
    finish,
    mask,
    notified,
    reported,
    resolve,
    say,
)
from backup_agent.cli.help import TidyCommand, TidyHelpGroup
from backup_agent.cli.options import (
    BackupDirectoryOption,
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
    YesOption,
)
from backup_agent.model.stopping import raise_if_stopped, set_stop_note
from backup_agent.model.wal_setup import DEFAULT_SLOT_KEEP, SetupStep

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
    stops taking WAL and alerts (so when its disk is full); a lost slot is an alarm, then a
    new slot and a new base backup once S3 takes WAL again.
    """
    set_stop_note("what S3 holds stays; what it does not waits in WAL_SPOOL_DIR and the "
                  "slot, for the next run")
    with reported("wal stream", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.wal import run_wal_stream

        def alarm(text: str) -> None:
            if settings.notify.url:
                from backup_agent.cli.notify import notify_failure

                notify_failure(settings.notify, mask(f"backup-agent wal stream: {text}"), "")

        with notified(settings, "wal stream"):
            result = run_wal_stream(settings, on_alarm=alarm, should_stop=raise_if_stopped,
                                    warn=lambda text: log.warning("%s", text))
        result.warnings = []  # said when they happened: the stream runs for months
        finish("wal stream", result, as_json=as_json)


ForRoleOption = Annotated[str | None, typer.Option(
    "--for-role", metavar="ROLE", help="The role `wal stream` connects as, if not --user "
                                       "(run setup as a superuser for another role).")]
SlotKeepOption = Annotated[str, typer.Option(
    "--max-slot-wal-keep-size", metavar="SIZE",
    help="What the slot may hold back before the server drops it (default: 8GB).")]
ServiceOnlyOption = Annotated[bool, typer.Option(
    "--print-service", help="Print only the service: the systemd unit, or in docker mode "
                            "the sidecar's compose file (what install-agent.sh writes).")]


@wal_app.command(cls=TidyCommand)
def setup(
    ctx: typer.Context, env_file: EnvFileOption = None, host: HostOption = None,
    port: PortOption = None, user: UserOption = None, db: DatabaseOption = None,
    pg_bindir: BinDirectoryOption = None, connect_timeout: ConnectTimeoutOption = None,
    for_role: ForRoleOption = None, slot_keep: SlotKeepOption = DEFAULT_SLOT_KEEP,
    yes: YesOption = False, service_only: ServiceOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """Print every server change the WAL stream needs; apply them with --yes.

    The REPLICATION right, EXECUTE on pg_switch_wal(), max_slot_wal_keep_size (ALTER SYSTEM
    and a reload) and the slot (WAL_SLOT). A pg_hba.conf line or a restart is printed for a
    human. Then how to run `wal stream` as a service: a systemd unit, or with
    POSTGRES_CONTAINER a restart-always sidecar from the server's own image (compose).
    """
    with reported("wal setup", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.wal_setup import run_wal_setup

        result = run_wal_setup(settings, role=for_role, slot_keep=slot_keep, apply=yes,
                               env_file=ctx.params.get("env_file"))
        if service_only and not as_json:  # what was asked for: printed even with --quiet
            typer.echo(mask(result.service.rstrip("\n")))
            result.warnings = []
        elif not as_json:
            say(setup_text(result.steps, applied=yes), stdout=True)
            say(f"\n{SIDECAR_INTRO if result.sidecar else SERVICE_INTRO}\n\n{result.service}",
                stdout=True)
        finish("wal setup", result, as_json=as_json)


SERVICE_INTRO = ("Run `wal stream` as a service, e.g. /etc/systemd/system/"
                 "backup-agent-wal.service (install-agent.sh --with-wal-stream installs it):")
SIDECAR_INTRO = ("The server runs in a container: run `wal stream` beside it in a "
                 "restart-always sidecar from its own image, e.g. this compose file "
                 "(install-agent.sh --with-wal-stream writes it and its build context); "
                 "or on the host, with an env file of its own without POSTGRES_CONTAINER "
                 "(POSTGRES_HOST/PORT the published address, PG_BINDIR the server's major): "
                 "`wal setup` with that file prints its systemd unit.")


def setup_text(steps: list[SetupStep], *, applied: bool) -> str:
    """One line per step (ok, done, to do, human), each followed by its SQL or hint."""
    lines = []
    for step in steps:
        if step.human:
            mark = "HUMAN"
        elif not step.needed:
            mark = "ok" if step.seen else "check"
        else:
            mark = "done" if applied else "to do"
        lines.append(f"[{mark:>5}] {step.what}")
        if step.needed or not step.seen:
            lines += [f"        {text}" for text in (step.sql or (step.hint or "",))]
    if not applied and any(step.needed and step.sql for step in steps):
        lines.append("Nothing was changed: run again with --yes to apply the SQL above.")
    return "\n".join(lines)


@app.command("base-backup", cls=TidyCommand)
def base_backup(
    ctx: typer.Context, env_file: EnvFileOption = None, host: HostOption = None,
    port: PortOption = None, user: UserOption = None, db: DatabaseOption = None,
    pg_bindir: BinDirectoryOption = None, connect_timeout: ConnectTimeoutOption = None,
    backup_dir: BackupDirectoryOption = None, s3_bucket: BucketOption = None,
    s3_prefix: PrefixOption = None, encrypt_to: EncryptToOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take a base backup of the whole cluster (pg_basebackup) into S3, for point-in-time recovery.

    One tar with its backup manifest, compressed, encrypted (ENCRYPT_TO) and uploaded
    create-only under base/<system id>/<stamp>/ while it is made (a hidden file in BACKUP_DIR
    meanwhile), then a signed descriptor (start and end LSN, timeline, times, version). Its
    WAL comes from the archive: run `wal stream` too.
    """
    with reported("base-backup", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.base_backup import run_base_backup

        with notified(settings, "base-backup"):
            result = run_base_backup(settings)
        if not as_json:
            say(f"base backup s3://{result.bucket}/{settings.s3.prefix}"
                f"{result.descriptor_key.rsplit('/', 1)[0]}/: WAL from "
                f"{result.descriptor['start_lsn']} to {result.descriptor['end_lsn']} "
                f"(timeline {result.descriptor['start_timeline']})", stdout=True)
        finish("base-backup", result, as_json=as_json)

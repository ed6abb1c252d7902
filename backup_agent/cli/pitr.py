"""The point-in-time restore commands: `restore-cluster` (registered on the one `app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backup_agent.cli.app import app
from backup_agent.cli.boundary import finish, reported, resolve, say
from backup_agent.cli.help import TidyCommand
from backup_agent.cli.options import (
    AllowUnsignedOption,
    BucketOption,
    EnvFileOption,
    IdentityOption,
    JsonOption,
    PrefixOption,
    ServerBinDirectoryOption,
    ToTimeOption,
)
from backup_agent.model.errors import ConfigurationError

PgdataOption = Annotated[Path, typer.Option(
    "--pgdata", metavar="DIR", help="An existing, empty directory owned by the user the "
    "server will run as: the restored cluster goes there, shut down, ready to start.")]
BaseBackupOption = Annotated[Path | None, typer.Option(
    "--base-backup", metavar="DIR", help="Start from this pg_basebackup output directory (-Fp, "
    "or -Ft's base.tar) instead of the newest base backup in S3 that ended before TIME "
    "(`backup-agent base-backup` makes those).")]


def checked_identifier(value: str | None) -> str | None:
    """--system-identifier, checked inside the run (a one-line error, exit 2)."""
    if value is not None and not (value.isascii() and value.isdigit()):
        raise ConfigurationError(f"--system-identifier {value!r} is not a system identifier: "
                                 "the number pg_controldata prints as 'Database system "
                                 "identifier'")
    return value


SystemIdentifierOption = Annotated[str | None, typer.Option(
    "--system-identifier", metavar="ID",
    help="The cluster to restore, when the bucket holds base backups of several "
         "(pg_controldata's 'Database system identifier').")]


@app.command("restore-cluster", cls=TidyCommand)
def restore_cluster(
    ctx: typer.Context, to_time: ToTimeOption, pgdata: PgdataOption,
    base_backup: BaseBackupOption = None,
    system_identifier: SystemIdentifierOption = None, allow_unsigned: AllowUnsignedOption = False,
    env_file: EnvFileOption = None, pg_bindir: ServerBinDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    identity: IdentityOption = None, as_json: JsonOption = False,
) -> None:
    """Restore the whole cluster into an empty directory as of a moment, from a base
    backup and the WAL archive in S3; it is left shut down, ready to start as a primary."""
    with reported("restore-cluster", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.pitr import run_restore_cluster

        result = run_restore_cluster(settings, to_time=to_time, pgdata=pgdata,
                                     base_backup=base_backup,
                                     system_identifier=checked_identifier(system_identifier),
                                     allow_unsigned=allow_unsigned)
        say(f"restored the cluster into {result.pgdata} as of {result.to_time}: last commit "
            f"replayed {result.last_commit or 'none'}, now on timeline {result.timeline} at "
            f"{result.lsn}, from {result.base_backup}")
        say(start_hint(Path(result.pgdata), settings.postgres.bin_directory))
        finish("restore-cluster", result, as_json=as_json)


def start_hint(pgdata: Path, bin_directory: Path | None) -> str:
    """How to start it: as the directory's owner, with the server's own major version."""
    import pwd

    try:
        owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    except (KeyError, OSError):
        owner = "its owner"
    pg_ctl = bin_directory / "pg_ctl" if bin_directory else "pg_ctl (of the same major version)"
    return (f"start it as {owner}: {pg_ctl} -D {pgdata} start (its postgresql.conf is the "
            "old server's: check port and listen_addresses first if that one still runs)")

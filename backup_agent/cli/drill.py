"""`backup-agent drill`: restore to random moments from S3 and prove each (registered on
the one `app`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from backup_agent.cli.app import app
from backup_agent.cli.boundary import exit_code_for, finish, log, notified, reported, resolve, say
from backup_agent.cli.help import TidyCommand
from backup_agent.cli.options import (
    BucketOption,
    EnvFileOption,
    IdentityOption,
    JsonOption,
    MetricsFileOption,
    PrefixOption,
    ServerBinDirectoryOption,
)
from backup_agent.cli.pitr import SystemIdentifierOption, checked_identifier
from backup_agent.model.errors import BackupAgentError
from backup_agent.model.settings import Settings

TargetsOption = Annotated[int, typer.Option(
    "--targets", metavar="N", min=1, help="How many random moments to restore to and prove, "
    "one in each Nth of the newest base backup's window.")]
RunAsOption = Annotated[str | None, typer.Option(
    "--run-as", metavar="USER", help="The operating system user the recovered servers run as "
    "(default: this user; as root, postgres).")]
SeedOption = Annotated[int | None, typer.Option(
    "--seed", metavar="N", help="Pick the same moments again (the report names them anyway).")]


@contextmanager
def drill_metrics(settings: Settings) -> Iterator[dict[str, int]]:
    """Write the drill's metrics into METRICS_FILE after the block, whatever happened."""
    counts = {"exact": 0}
    started, code = time.monotonic(), 0
    try:
        yield counts
    except BaseException as error:
        code = int(exit_code_for(error))
        raise
    finally:
        if settings.metrics_file is not None:
            from backup_agent.cli.metrics import RunOutcome, write_drill_metrics

            try:
                write_drill_metrics(settings.metrics_file, RunOutcome(
                    database=settings.postgres.database, finished_at=time.time(),
                    exit_code=code, duration_seconds=round(time.monotonic() - started, 3)),
                    targets_exact=counts["exact"])
            except (OSError, BackupAgentError) as problem:
                log.warning("could not write METRICS_FILE %s (%s)", settings.metrics_file,
                            problem)


@app.command("drill", cls=TidyCommand)
def drill(
    ctx: typer.Context, targets: TargetsOption = 3, run_as: RunAsOption = None,
    system_identifier: SystemIdentifierOption = None, seed: SeedOption = None,
    env_file: EnvFileOption = None, pg_bindir: ServerBinDirectoryOption = None,
    s3_bucket: BucketOption = None, s3_prefix: PrefixOption = None,
    identity: IdentityOption = None, metrics_file: MetricsFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Prove point-in-time recovery: audit the WAL archive, then restore the whole cluster
    from S3 to N random moments of the newest base backup's window, each proven exact to
    the commit, opened and checked with pg_amcheck. Exit 8 on any problem."""
    with reported("drill", as_json=as_json):
        settings = resolve(ctx)
        from backup_agent.actions.drill import run_drill
        from backup_agent.cli.markdown import append_step_summary, drill_markdown
        from backup_agent.cli.render import drill_summary

        with notified(settings, "drill") as notice, drill_metrics(settings) as counts:
            result = run_drill(settings, targets=targets, run_as=run_as,
                               system_identifier=checked_identifier(system_identifier),
                               seed=seed)
            counts["exact"] = result.exact
            say(drill_summary(result))
            append_step_summary(drill_markdown(result))
            notice["summary"] = (f"backup-agent drill: {result.exact}/{len(result.targets)} "
                                 "target(s) restored exactly")
            finish("drill", result, as_json=as_json)

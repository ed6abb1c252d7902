"""One drill target: recover the whole cluster as of T into a directory of its own, prove
where it stopped, open it, check it, remove it.

Exact means both witnesses agree with the archive's own records (pg_waldump, read by the
drill before any recovery): `pg_last_xact_replay_timestamp()` as the recovery saw it at the
pause (restoring/cluster.py's Reached.last_commit) is the time of the last transaction
record before the stop, and the server's log names the first record it did not replay
("recovery stopping before commit of transaction X, time Y"). Then the cluster opens as a
primary, pg_amcheck passes, and a marker agrees: of the last commits up to T the restored
server sees every one committed, and none of the first commits after it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from backup_agent.model.drill import Stop, TargetReport
from backup_agent.model.errors import BackupAgentError, RestoreError
from backup_agent.model.settings import Settings
from backup_agent.model.targets import RecoveryTarget
from backup_agent.physical.amcheck import PASSED, UNAVAILABLE, amcheck
from backup_agent.physical.recovery import Reached
from backup_agent.physical.server import PrivateServer
from backup_agent.restoring.cluster import recover_cluster

OPEN_TIMEOUT_SECONDS = 120
_STOPPED = re.compile(r"transaction (\d+), time (.+)$")


def drill_target(settings: Settings, moment: datetime, stop: Stop, *, owner: tuple[int, int],
                 system_identifier: str, workspace: Path) -> TargetReport:
    """Recover as of `moment` under `workspace` (run as `owner`) and prove it against
    `stop`; a failure is the report's `problem`, never raised (the next target still runs)."""
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="target-", dir=workspace))
    scratch.chmod(0o755)  # the server's user must reach its directory inside
    pgdata = scratch / "pgdata"
    pgdata.mkdir(mode=0o700)
    shutil.chown(pgdata, owner[0], owner[1])
    report = TargetReport(target=moment, base_backup="", expected_last=_time(stop),
                          reached_last=None, logged_stop=None, exact=False, amcheck="not run",
                          marker="not read", duration_seconds=0.0)
    try:
        recovered = recover_cluster(settings, RecoveryTarget(moment=moment), pgdata, owner,
                                    system_identifier=system_identifier)
        report.base_backup = recovered.base_backup
        reached = recovered.reached
        report.reached_last, report.logged_stop = reached.last_commit, reached.stopped_before
        report.problem = _inexact(stop, reached)
        report.exact = report.problem is None
        _open_and_check(settings, pgdata, owner, stop, report)
    except BackupAgentError as error:
        report.problem = report.problem or str(error)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        report.duration_seconds = round(time.monotonic() - started, 1)
    return report


def _time(stop: Stop) -> datetime | None:
    return stop.last.moment if stop.last else None


def _inexact(stop: Stop, reached: Reached) -> str | None:
    """Why the recovery did not stop where the archive's records say it must, or None."""
    if reached.last_commit != _time(stop):
        return (f"pg_last_xact_replay_timestamp() was {_text(reached.last_commit)}, the last "
                f"transaction before the target in the WAL (pg_waldump) {_text(_time(stop))}")
    if stop.next is None:
        return None
    logged = _STOPPED.search(reached.stopped_before or "")
    if logged is None:
        return "the server's log does not say where recovery stopped"
    at = datetime.fromisoformat(logged.group(2).strip())
    if int(logged.group(1)) != stop.next.xid or at != stop.next.moment:
        return (f"the server stopped before transaction {logged.group(1)} at {at.isoformat()}, "
                f"pg_waldump's first after the target is {stop.next.xid} at "
                f"{stop.next.moment.isoformat()}")
    return None


def _text(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "none"


def _open_and_check(settings: Settings, pgdata: Path, owner: tuple[int, int], stop: Stop,
                    report: TargetReport) -> None:
    """Start the recovered directory as it is (a primary), run pg_amcheck and read the
    marker, then shut it down cleanly."""
    with PrivateServer(settings.postgres.bin_directory, pgdata, {}, owner=owner) as server:
        deadline = time.monotonic() + OPEN_TIMEOUT_SECONDS
        while (state := server.query("SELECT pg_is_in_recovery()")) is None:
            if not server.alive or time.monotonic() > deadline:
                raise RestoreError("the recovered cluster did not open: "
                                   f"{server.log_text().strip()[-300:]}")
            time.sleep(0.1)
        if state[0]:
            raise RestoreError("the recovered cluster opened still in recovery: not promoted")
        # The marker first: amcheck's own transactions would reuse the xids after T.
        report.marker, marker_problem = _marker(server, stop)
        report.amcheck = amcheck(server)
        server.stop()
    if not report.amcheck.startswith((PASSED, UNAVAILABLE)):
        report.problem = report.problem or f"pg_amcheck {report.amcheck}"
    report.problem = report.problem or marker_problem


def _marker(server: PrivateServer, stop: Stop) -> tuple[str, str | None]:
    """Ask the restored server which of the commits around the stop it holds committed."""
    row = server.query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
    if row is None:
        raise RestoreError("the recovered cluster stopped answering")
    next_xid = int(row[0])
    before = _committed(server, next_xid, stop.committed_before)
    after = _committed(server, next_xid, stop.committed_after)
    text = (f"committed {before}/{len(stop.committed_before)} of the last commits up to T, "
            f"{after}/{len(stop.committed_after)} after")
    if before != len(stop.committed_before) or after:
        return text, f"the restored cluster disagrees with the WAL: {text}"
    return text, None


def _committed(server: PrivateServer, next_xid: int, xids: tuple[int, ...]) -> int:
    """How many of the 32-bit `xids` are committed; an xid at or past the server's next is
    not (it was never replayed)."""
    if not xids:
        return 0
    epoch, low = next_xid >> 32, next_xid & 0xFFFFFFFF
    full = [(epoch << 32 | xid) if xid < low else ((epoch - 1) << 32 | xid) if epoch else None
            for xid in xids]
    values = ",".join(str(xid) for xid in full if xid is not None)
    row = server.query(f"SELECT count(*) FROM unnest('{{{values}}}'::xid8[]) AS x WHERE CASE "
                       f"WHEN x < '{next_xid}'::xid8 THEN pg_xact_status(x) END = 'committed'")
    return int(row[0]) if row else 0

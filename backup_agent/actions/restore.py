"""`backup-agent restore SOURCE`: never an empty production database.

The backup is restored into a new database while it is being proven good (checksum, gzip,
closing line) in the same pass. Only when psql finished cleanly and the proof holds is the
new database swapped in (atomically, app containers stopped around it); the old one stays
as `<db>_pre_restore_<stamp>` for rollback. Any failure drops the half-built database and
leaves the target exactly as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup_agent.keys.age_identities import decryption_keys
from backup_agent.keys.trust import TrustedCatalog as Catalog
from backup_agent.keys.trust import authenticity_warnings, is_trusted, with_own_key
from backup_agent.model.backup import BackupRef
from backup_agent.model.database_names import derived_name
from backup_agent.model.errors import (
    BackupAgentError,
    CancelledError,
    ConfigurationError,
    DatabaseError,
    VerificationError,
)
from backup_agent.model.progress import NO_PROGRESS, Progress
from backup_agent.model.settings import Settings
from backup_agent.model.targets import LATEST, parse_target
from backup_agent.postgres.admin import DatabaseAdmin, quote_identifier
from backup_agent.restoring import containers
from backup_agent.restoring.as_of import database_as_of
from backup_agent.restoring.build import Request, build, reachable
from backup_agent.restoring.cluster import require_trusted_keys
from backup_agent.restoring.plan import RestorePlan, containers_to_stop, make_plan
from backup_agent.restoring.proof import Proof, proven, spool_directory
from backup_agent.restoring.rebuild import NO_GLOBALS, Rebuild, proven_globals
from backup_agent.streams.verify import Verdict

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

log = logging.getLogger(__name__)

UNPROVEN = ("the base backup or the WAL was not proven by a trusted signature: the database "
            "as of that moment is restored as an unsigned backup would be")


@dataclass
class RestoreResult:
    dry_run: bool
    source: str
    source_name: str
    target_database: str
    previous_database: str | None
    checksum: str  # "ok", "mismatch", "missing"
    verified: bool  # checksum, gzip stream and closing line all good
    source_size_bytes: int
    source_created: str
    duration_seconds: float
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    no_verify: bool = False
    roles_created: list[str] = field(default_factory=list)
    roles_to_create: list[str] = field(default_factory=list)  # dry run: what it would create
    # What the real restore would accept: proven, or (--no-verify) all but the checksum.
    usable: bool = True
    to_time: str | None = None  # --to-time: the moment asked for
    last_commit: str | None = None  # --to-time: the last transaction the recovery replayed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def failure(self) -> BackupAgentError | None:
        if self.dry_run and not self.usable:
            return VerificationError("the dry run found the backup unusable: the restore "
                                     "would be refused", details=self.to_dict())
        return None

    @property
    def rollback_hint(self) -> str | None:
        if not self.previous_database or self.dry_run:
            return None
        target, previous = quote_identifier(self.target_database), \
            quote_identifier(self.previous_database)
        bad = quote_identifier(derived_name(self.target_database, "_bad"))
        return (f"to roll back: ALTER DATABASE {target} RENAME TO {bad}; "
                f"ALTER DATABASE {previous} RENAME TO {target};")


def _refuse_another_database(source: BackupRef, database: str, *,
                             target_db: str | None) -> None:
    """A backup replaces only the database it was made of; into any other only when the
    operator names it with --target-db (a new database, nothing replaced)."""
    backed_up = (source.manifest or {}).get("database")
    if target_db is None and isinstance(backed_up, str) and backed_up != database:
        raise ConfigurationError(
            f"{source.name} is a backup of database {backed_up}, not of {database} "
            f"(POSTGRES_DB): nothing was restored; restore it beside it with --target-db "
            f"NAME, or set POSTGRES_DB={backed_up} to replace {backed_up}")


def _refuse_unless_proven(verdict: Verdict, *, no_verify: bool) -> None:
    """--no-verify waives the checksum only: never the content, the closing line or the
    statement check, which all come before psql sees a byte."""
    if verdict.good or (no_verify and verdict.content_good):
        return
    problems = verdict.content_problems() if no_verify else verdict.problems()
    advice = ("check --identity, or try an earlier backup" if verdict.decryption_error else
              "try an earlier backup" if no_verify or verdict.statement_problem else
              "try an earlier backup; --no-verify restores anyway, at your own risk")
    raise VerificationError(f"refusing the backup: {'; '.join(problems)}; nothing was restored "
                            f"and none of it ran ({advice})")


def _build(settings: Settings, plan: RestorePlan, rebuild: Rebuild, proof: Proof, *,
           verbose: bool, progress: Progress, keys: list[Identity] | None, trusted: bool,
           warnings: list[str]) -> None:
    """Build plan.build from the proven bytes (restoring/build.py); raise on failure, with
    plan.build dropped (the roles rebuild created are the caller's to undo)."""
    request = Request(name=plan.build, target=plan.target, trusted=trusted, no_owner=plan.no_owner,
                      verbose=verbose, model=rebuild.admin.facts(plan.target))
    built = build(settings.postgres, rebuild, proof, request, identities=keys,
                  progress=progress.task(f"restore {plan.source.name}", plan.source.size).update)
    warnings += built.notes


def _check_target(settings: Settings, admin: DatabaseAdmin, target_db: str | None,
                  stop: list[str]) -> None:
    """Refuse what would fail at the end: --target-db taken, an app container missing."""
    if target_db is not None and admin.exists(target_db):
        replace_it = (" (leave out --target-db to replace it, the current one kept for "
                      "rollback)" if target_db == settings.postgres.database else "")
        raise ConfigurationError(f"database {target_db} already exists: --target-db makes "
                                 f"a new database, so choose another name{replace_it}")
    containers.check_reachable(stop)


def run_restore(settings: Settings, given: str, *, from_s3: bool = False,
                target_db: str | None = None, dry_run: bool = False, no_verify: bool = False,
                no_owner: bool = False, drop_previous: bool = False, verbose: bool = False,
                allow_unsigned: bool = False, to_time: str | None = None,
                scratch: Path | None = None,
                confirm: Callable[[RestorePlan], bool] = lambda plan: True,
                progress: Progress = NO_PROGRESS,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RestoreResult:
    """Restore a backup, or (`to_time`) the database as of a moment from the WAL archive;
    return what happened. Raise a BackupAgentError on any failure."""
    restore = partial(_restore_backup, target_db=target_db, dry_run=dry_run,
                      no_owner=no_owner, drop_previous=drop_previous, verbose=verbose,
                      confirm=confirm, progress=progress, clock=clock)
    if to_time is None:
        return restore(settings, given, from_s3=from_s3, no_verify=no_verify,
                       allow_unsigned=allow_unsigned)
    if given != LATEST or from_s3 or no_verify:
        raise ConfigurationError("--to-time restores from the WAL archive: give no backup, "
                                 "--from or --no-verify with it")
    target = parse_target(to_time)
    started = time.monotonic()
    require_trusted_keys(with_own_key(settings), allow_unsigned=allow_unsigned)
    reachable(settings.postgres)  # docker mode needs POSTGRES_HOST: said before the recovery
    with DatabaseAdmin(settings.postgres) as admin:
        _check_target(settings, admin, target_db,
                      containers_to_stop(settings, swap=target_db is None))
        Rebuild(admin, None, admin.server_major(), no_owner).check()  # owners: a superuser
    with database_as_of(with_own_key(settings), target, scratch=scratch, clock=clock,
                        allow_unsigned=allow_unsigned) as made:
        # The made backup is trusted through this run's key alone, and only when the base
        # backup and the WAL were proven; otherwise it is restored as an unsigned backup.
        made_settings = replace(settings, backup_directory=made.directory,
                                signing_key_file=None,
                                trusted_signing_keys=tuple(filter(None, [made.trusted_key])))
        recovered, reached = made.recovered, made.recovered.reached.last_commit
        moment = (f"{settings.postgres.database} as of {target.describe()} (last commit "
                  f"{reached.isoformat() if reached else 'none'})")  # not the scratch path
        result = restore(made_settings, made.name, from_s3=False, no_verify=False,
                         allow_unsigned=made.trusted_key is None,
                         confirm=lambda plan: confirm(replace(
                             plan, source=replace(plan.source, location=moment))))
    result.source = f"{recovered.base_backup} and the WAL archive, as of {target.describe()}"
    result.to_time, result.last_commit = target.describe(), reached.isoformat() if reached \
        else None
    result.steps = [f"recover the cluster as of {target.describe()} into a throwaway directory "
                    f"(base backup and WAL proven first; window {recovered.window}), dump "
                    f"{settings.postgres.database} from it, remove the rest", *result.steps]
    result.warnings = [*recovered.warnings, *([] if made.trusted_key else [UNPROVEN]),
                       *result.warnings]
    result.duration_seconds = round(time.monotonic() - started, 3)
    return result


def _restore_backup(settings: Settings, given: str, *, from_s3: bool,
                    target_db: str | None, dry_run: bool, no_verify: bool,
                    no_owner: bool, drop_previous: bool, verbose: bool,
                    allow_unsigned: bool, confirm: Callable[[RestorePlan], bool],
                    progress: Progress, clock: Callable[[], datetime]) -> RestoreResult:
    started = time.monotonic()
    settings = with_own_key(settings)
    catalog = Catalog(settings, allow_unsigned=allow_unsigned)
    source = catalog.resolve(given, from_s3=from_s3)
    warnings = [*catalog.warnings, *authenticity_warnings(settings, [source],
                                                          allow_unsigned=allow_unsigned)]
    _refuse_another_database(source, settings.postgres.database, target_db=target_db)
    if no_verify:
        warnings.append("--no-verify: the backup's checksum is NOT required (its content, "
                        "closing line and statements still are)")
    elif source.expected_sha256 is None:
        raise VerificationError(f"{source.location} has no .sha256 checksum, so it cannot be "
                                "proven intact: nothing was restored (--no-verify restores "
                                "anyway, at your own risk)")
    keys = decryption_keys(settings, source)  # a missing or wrong key stops us here
    cluster = proven_globals(source, keys)  # small: proven before the dump is read
    if cluster is None and source.manifest is not None:
        warnings.append(NO_GLOBALS.format(name=source.name))
    reachable(settings.postgres)
    trusted = is_trusted(settings, source)
    plan = make_plan(settings, source, target_db=target_db, drop_previous=drop_previous,
                     no_owner=no_owner, moment=clock())
    with DatabaseAdmin(settings.postgres) as admin:
        plan.target_missing = plan.swap and not admin.exists(plan.target)
        _check_target(settings, admin, target_db, plan.stop_containers)
        if not dry_run and not confirm(plan):
            raise CancelledError("restore cancelled: nothing was changed")
        rebuild = Rebuild(admin, cluster, server_major=admin.server_major(),
                          no_owner=no_owner, trusted=trusted)
        rebuild.check()  # the dump's owners can exist here (a dry run says so too)
        with proven(source, identities=keys,
                    spool_in=spool_directory(settings.backup_directory),
                    progress=progress.task(source.progress_label("verify"),
                                           source.size).update) as proof:
            if dry_run:
                result = _dry_run(source, plan, [*warnings, *proof.verdict.problems()],
                                  started, proof.verdict, no_verify=no_verify,
                                  with_globals=cluster is not None)
                result.roles_to_create = rebuild.missing_roles()
                return result
            _refuse_unless_proven(proof.verdict, no_verify=no_verify)
            log.info("restoring %s into %s", source.location, plan.build)
            try:
                _build(settings, plan, rebuild, proof, verbose=verbose, progress=progress,
                       keys=keys, trusted=trusted, warnings=warnings)
                _put_in_place(plan, admin)
            except BaseException:
                log.info("dropping the half-built database %s", plan.build)
                admin.drop(plan.build)
                rebuild.undo()
                raise
            finally:
                warnings += rebuild.notes
        if plan.drop_previous and plan.previous:
            try:
                admin.drop(plan.previous)
                log.info("dropped the previous database %s", plan.previous)
            except DatabaseError as error:  # the restore itself is done: say so, not fail
                warnings.append(f"the restore succeeded, but the previous database "
                                f"{plan.previous} could not be dropped ({error}): drop it with "
                                f"`backup-agent prune --drop {plan.previous} --yes`")
                plan.drop_previous = False
    return RestoreResult(
        dry_run=False, source=source.location, source_name=source.name,
        target_database=plan.target,
        previous_database=None if plan.drop_previous else plan.previous,
        checksum=proof.verdict.checksum_state, verified=proof.verdict.good,
        source_size_bytes=source.size, source_created=source.created.isoformat(),
        duration_seconds=round(time.monotonic() - started, 3),
        steps=plan.steps(with_globals=cluster is not None), warnings=warnings,
        no_verify=no_verify, roles_created=rebuild.created_roles)


def _put_in_place(plan: RestorePlan, admin: DatabaseAdmin) -> None:
    """Swap the built database in (app containers stopped around it), or just rename it."""
    if not plan.swap:
        admin.rename(plan.build, plan.target)
        return
    assert plan.previous is not None
    with containers.stopped(plan.stop_containers):
        if admin.exists(plan.target):
            admin.swap(current=plan.target, replacement=plan.build, previous=plan.previous)
        else:  # disaster recovery: the database is gone altogether
            admin.rename(plan.build, plan.target)
            plan.previous = None


def _dry_run(source: BackupRef, plan: RestorePlan, warnings: list[str], started: float,
             verdict: Verdict, *, no_verify: bool, with_globals: bool) -> RestoreResult:
    """The plan and the proof; no database, file or container was touched."""
    return RestoreResult(
        dry_run=True, source=source.location, source_name=source.name,
        target_database=plan.target, previous_database=plan.previous,
        checksum=verdict.checksum_state, verified=verdict.good,
        source_size_bytes=source.size, source_created=source.created.isoformat(),
        duration_seconds=round(time.monotonic() - started, 3),
        steps=plan.steps(with_globals=with_globals), warnings=warnings, no_verify=no_verify,
        usable=verdict.good or (no_verify and verdict.content_good))

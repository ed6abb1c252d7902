"""Render results: plain summaries and a table for people, one JSON envelope for machines.

Every `--json` document has the same envelope: `command`, `status` (success, warning or
failure), `exit_code`, `error`, `warnings`, then the command's own data. Secrets are masked
in the values before encoding, so no escaping can hide one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import typer

from backup_agent.cli.progress import human_size
from backup_agent.model.durations import age_text, human_duration
from backup_agent.model.errors import BackupAgentError, ExitCode
from backup_agent.model.masking import masked

if TYPE_CHECKING:
    from backup_agent.actions.backup import BackupResult
    from backup_agent.actions.drill import DrillResult
    from backup_agent.actions.list import ListedBackup, ListResult
    from backup_agent.actions.prune import Leftover, PruneResult
    from backup_agent.actions.restore import RestoreResult
    from backup_agent.actions.status import StatusResult
    from backup_agent.actions.verify import VerifyResult
    from backup_agent.actions.verify_wal import WalVerifyResult
    from backup_agent.model.variables import Configuration


class Outcome(Protocol):
    """What every action returns: its data, its warnings, and its verdict."""

    @property
    def warnings(self) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...

    def failure(self) -> BackupAgentError | None: ...


def envelope(command: str, *, warnings: Sequence[str], data: dict[str, Any],
             exit_code: ExitCode = ExitCode.OK, error: str | None = None) -> dict[str, Any]:
    """Return the one JSON shape every command prints with --json."""
    status = "failure" if error is not None else "warning" if warnings else "success"
    return {"command": command, "status": status, "exit_code": int(exit_code),
            "error": error, "warnings": list(warnings),
            **{key: value for key, value in data.items() if key not in ENVELOPE_KEYS}}


ENVELOPE_KEYS = ("command", "status", "exit_code", "error", "warnings")


def print_json(payload: dict[str, Any], secrets: Sequence[str]) -> None:
    typer.echo(json.dumps(masked(payload, secrets), indent=2, default=str))


def human_age(created: datetime, now: datetime) -> str:
    return age_text(now - created)


def aligned(rows: Sequence[Sequence[str]]) -> str:
    """Return rows as left-aligned columns two spaces apart, without trailing blanks."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                     .rstrip() for row in rows)


def _completeness(backup: ListedBackup) -> str:
    if backup.complete:
        return "yes"
    incomplete = [ref for ref in backup.refs if not ref.complete]
    what = "damaged" if all(ref.made_by_agent and ref.has_checksum for ref in incomplete) \
        else "no manifest"  # ours with a checksum, yet not complete: not the size it records
    if len(backup.refs) == 1:
        return what
    return f"{what} in " + "+".join(ref.where.value for ref in incomplete)


def backup_table(backups: Sequence[ListedBackup], now: datetime, *, keys: bool = False) -> str:
    """Return an aligned table, one line per backup (wherever it is), with a header."""
    header = ("NAME", "WHERE", "SIZE", "CREATED (UTC)", "AGE", "CHECKSUM", "COMPLETE",
              *(("S3 KEY",) if keys else ()))
    rows = [header] + [
        (backup.name, backup.where, human_size(backup.size),
         backup.created.strftime("%Y-%m-%d %H:%M:%S"), human_age(backup.created, now),
         "yes" if backup.has_checksum else "no", _completeness(backup),
         *((backup.s3.key or "-" if backup.s3 else "-",) if keys else ()))
        for backup in backups]
    return aligned(rows)


def list_summary(result: ListResult) -> str:
    """Return per place: how many, how big, the oldest and newest; then what S3 lacks."""
    assert result.summary is not None
    rows = [("PLACE", "BACKUPS", "TOTAL", "OLDEST", "NEWEST")] + [
        (place.place, str(place.count), human_size(place.total_bytes),
         place.oldest.name if place.oldest else "-", place.newest.name if place.newest else "-")
        for place in result.summary]
    lines = [aligned(rows)]
    if result.missing_from_s3 is not None:
        lines.append(f"missing from S3: {len(result.missing_from_s3)}"
                     + "".join(f"\n  {name}" for name in result.missing_from_s3))
    return "\n".join(lines)


def configuration_table(configuration: Configuration) -> str:
    """Return every setting: name, value (or default), source and meaning."""
    return aligned([("VARIABLE", "VALUE", "SOURCE", "MEANING")] + [
        (entry.variable.name, entry.shown, entry.source.value, entry.variable.meaning)
        for entry in configuration.entries])


def backup_summary(result: BackupResult) -> str:
    """Return the closing lines of a backup run in plain words."""
    lines = [f"backup {result.status}: {result.name} of database {result.database}, "
             f"{human_size(result.size_bytes)} "
             f"({human_size(result.uncompressed_bytes)} of SQL) in {result.duration_seconds:.1f}s",
             f"  local: {result.path}",
             f"  sha256: {result.sha256}",
             f"  s3: {result.s3.uri if result.s3 else 'not uploaded'}"]
    if result.pruned:
        lines.append(f"  pruned: {', '.join(result.pruned)}")
    return "\n".join(lines)


def restore_summary(result: RestoreResult) -> str:
    if result.dry_run:
        lines = [f"dry run: nothing was changed. The plan for {result.source}:"]
        if result.to_time is not None:
            lines.append(f"  recovered as of {result.to_time}: last commit "
                         f"{result.last_commit or 'none'} (proven, then removed)")
        lines += [f"  backup: {result.source_name}, {human_size(result.source_size_bytes)}, "
                  f"created {result.source_created}",
                  f"  checksum: {result.checksum}; verified: "
                  f"{'yes' if result.verified else 'NO'}",
                  f"  target database: {result.target_database}"]
        if result.roles_to_create:
            lines.append(f"  roles it would create: {', '.join(result.roles_to_create)}")
        lines += [f"  {number}. {step}" for number, step in enumerate(result.steps, 1)]
    elif result.to_time is not None:
        lines = [f"restore success: database {result.target_database} is now as of "
                 f"{result.to_time} (last commit replayed: {result.last_commit or 'none'}) in "
                 f"{result.duration_seconds:.1f}s"]
    else:
        lines = [f"restore success: {result.source_name} is now database "
                 f"{result.target_database} (checksum {result.checksum}) in "
                 f"{result.duration_seconds:.1f}s"]
    if not result.dry_run:  # a dump or a moment: the same swap, the same way back
        if result.roles_created:
            lines.append(f"  created role(s): {', '.join(result.roles_created)}")
        if result.previous_database:
            lines.append(f"  previous database kept as {result.previous_database}")
            lines.append(f"  {result.rollback_hint}")
    return "\n".join(lines)


def wal_verify_summary(result: WalVerifyResult) -> str:
    """The levels, each base backup's window, then one line per finding, then the verdict."""
    lines = [f"level {level.level}: " + (f"{level.objects} object(s) checked" if level.checked
                                         else "not checked")
             + (f" ({level.note})" if level.note else "") for level in result.levels]
    for cluster in result.clusters:
        for base in cluster.base_backups:
            state = (f"restorable {base.window.text}" if base.restorable and base.window
                     else f"NOT restorable: {base.problem}")
            lines.append(f"base backup {cluster.system_identifier}/{base.stamp} (path to "
                         f"timeline {base.timeline}): {state}")
    lines += [finding.line for finding in result.findings]
    status = "failure" if result.findings else "success"
    segments = sum(cluster.segments for cluster in result.clusters)
    lines.append(f"verify --wal {status}: {len(result.findings)} problem(s), {segments} "
                 f"segment(s) on timeline(s) "
                 f"{', '.join(str(t) for c in result.clusters for t in c.timelines) or 'none'} "
                 f"in {result.duration_seconds:.1f}s")
    return "\n".join(lines)


def drill_summary(result: DrillResult) -> str:
    """The audit, one line per target, then the verdict."""
    lines = [finding.line for finding in result.findings]
    audit = "clean" if not result.findings else f"{len(result.findings)} problem(s)"
    lines.insert(0, f"audit: names and content of the whole archive, {result.segments_read} "
                    f"segment(s) of base backup {result.base_backup or 'none'} downloaded and "
                    f"parsed: {audit}")
    lines += [target.line for target in result.targets]
    status = "success" if result.failure() is None else "failure"
    window = (f"window {result.window['start']} .. {result.window['end']}" if result.window
              else "no window drilled")
    lines.append(f"drill {status}: {result.exact}/{len(result.targets)} target(s) exact, "
                 f"{window}, in {result.duration_seconds:.1f}s")
    return "\n".join(lines)


def verify_summary(result: VerifyResult) -> str:
    lines = []
    for item in result.backups:
        state = "ok" if item.ok else "FAILED"
        if not item.ok:
            detail = "; ".join(item.problems)
        elif item.gzip_complete is None:
            detail = ("checksum verified; encrypted, so the content was not checked "
                      "(--identity checks it too)")
        else:
            detail = "checksum, gzip stream, closing line and statements verified"
        if item.restore_test and item.ok:
            detail += (f"; restored into a scratch database, {item.restore_test.tables_checked}"
                       " tables' row counts match the manifest")
            if item.restore_test.roles_created:
                detail += (f"; created role(s) {', '.join(item.restore_test.roles_created)} "
                           "(NOLOGIN) for the test and dropped them")
            if item.restore_test.catalog_compared:
                detail += ", and its catalog (objects, grants, roles, database properties) " \
                          "matches the backup's"
        lines.append(f"{state}: {item.location}: {detail}")
    status = "success" if all(item.ok for item in result.backups) else "failure"
    lines.append(f"verify {status}: {sum(item.ok for item in result.backups)} of "
                 f"{len(result.backups)} backup(s) good in {result.duration_seconds:.1f}s")
    return "\n".join(lines)


def database_age(leftover: Leftover, now: datetime) -> str:
    return human_age(leftover.created, now) if leftover.created else "unknown age"


def prune_summary(result: PruneResult) -> str:
    verb = "would delete" if result.dry_run else "deleted"
    lines = [f"{verb} {len(result.deleted)} backup(s), keeping the {result.keep_local} newest "
             "good ones", *(f"  {backup.location}" for backup in result.deleted)]
    if result.damaged:
        lines.append(f"left {len(result.damaged)} damaged backup(s) for inspection")
    plan = result.databases
    if plan is not None:
        lines += [f"{'would drop' if result.dry_run else 'dropped'} {len(plan.drop)} "
                  "database(s)", *(f"  {leftover.name} ({database_age(leftover, plan.now)} old)"
                                   for leftover in plan.drop)]
        if plan.young:
            lines += [f"left {len(plan.young)} database(s) younger than {plan.min_age_text} "
                      "(name one with --drop to drop it now)",
                      *(f"  {leftover.name} ({database_age(leftover, plan.now)} old)"
                        for leftover in plan.young)]
    return "\n".join(lines)


def status_summary(result: StatusResult) -> str:
    text = (f"ok: newest complete backup {result.newest.name} ({result.newest.where.value}) "
            f"is {age_text(result.age)} old (limit {human_duration(result.max_age)})")
    if result.wal is not None:
        wal = result.wal
        lag = "nothing uploaded yet" if wal["lag_seconds"] is None \
            else f"lag {wal['lag_seconds']:g}s"
        alarm = f", ALARM: {wal['alarm']}" if wal["alarm"] else ""
        text += (f"\nwal: last segment {wal['last_segment'] or 'none'} ({lag}), receiver "
                 f"{wal['receiver']}{alarm}")
    return text

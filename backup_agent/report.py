"""Render results for people: a terminal table, plain summaries, GitHub step summaries."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from backup_agent.actions.backup import BackupResult
from backup_agent.actions.list import ListedBackup
from backup_agent.actions.restore import RestoreResult
from backup_agent.actions.verify import VerifyResult
from backup_agent.progress import human_size


def human_age(created: datetime, now: datetime) -> str:
    seconds = max(0, int((now - created).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"


def backup_table(backups: Sequence[ListedBackup], now: datetime) -> str:
    """Return an aligned table of backups, one line each, with a header."""
    header = ("NAME", "WHERE", "SIZE", "CREATED (UTC)", "AGE", "CHECKSUM", "COMPLETE")
    rows = [header] + [
        (backup.name, backup.where, human_size(backup.size_bytes),
         backup.created.strftime("%Y-%m-%d %H:%M:%S"), human_age(backup.created, now),
         "yes" if backup.has_checksum else "no",
         "yes" if backup.complete else "no manifest")
        for backup in backups]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                     .rstrip() for row in rows)


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
    lines += [f"  warning: {warning}" for warning in result.warnings]
    return "\n".join(lines)


def backup_markdown(result: BackupResult) -> str:
    icon = {"success": "✅", "warning": "⚠️"}.get(result.status, "❌")
    lines = [f"### {icon} Database backup: {result.status}", "",
             "| | |", "|---|---|",
             f"| Backup | `{result.name}` |",
             f"| Database | `{result.database}` |",
             f"| Size | {human_size(result.size_bytes)} |",
             f"| Duration | {result.duration_seconds:.1f} s |",
             f"| SHA-256 | `{result.sha256}` |",
             f"| S3 | {f'`{result.s3.uri}`' if result.s3 else 'not uploaded'} |"]
    if result.pruned:
        lines.append(f"| Pruned | {', '.join(f'`{name}`' for name in result.pruned)} |")
    lines += ["", *(f"> ⚠️ {warning}" for warning in result.warnings)]
    return "\n".join(lines) + "\n"


def failure_markdown(command: str, message: str, exit_code: int) -> str:
    return (f"### ❌ backup-agent {command}: failed (exit {exit_code})\n\n"
            f"```\n{message}\n```\n")


def append_step_summary(markdown: str) -> None:
    """Append to GitHub's job summary when running in Actions; otherwise do nothing."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with Path(target).open("a", encoding="utf-8") as summary:
            summary.write(markdown)


def restore_summary(result: RestoreResult) -> str:
    if result.status == "dry-run":
        lines = [f"dry run: nothing was changed. The plan for {result.source}:",
                 f"  backup: {result.source_name}, {human_size(result.source_size_bytes)}, "
                 f"created {result.source_created}",
                 f"  checksum: {result.checksum}; verified: {'yes' if result.verified else 'NO'}",
                 f"  target database: {result.target_database}"]
        lines += [f"  {number}. {step}" for number, step in enumerate(result.steps, 1)]
    else:
        lines = [f"restore success: {result.source_name} is now database "
                 f"{result.target_database} (checksum {result.checksum}) in "
                 f"{result.duration_seconds:.1f}s"]
        if result.previous_database:
            lines.append(f"  previous database kept as {result.previous_database}")
            lines.append(f"  {result.rollback_hint}")
    lines += [f"  warning: {warning}" for warning in result.warnings]
    return "\n".join(lines)


def restore_markdown(result: RestoreResult) -> str:
    icon = "✅" if result.status == "success" else "🔎"
    lines = [f"### {icon} Database restore: {result.status}", "", "| | |", "|---|---|",
             f"| Backup | `{result.source}` |", f"| Target | `{result.target_database}` |",
             f"| Checksum | {result.checksum} |",
             f"| Previous database | {result.previous_database or '—'} |",
             f"| Duration | {result.duration_seconds:.1f} s |", ""]
    lines += [f"> ⚠️ {warning}" for warning in result.warnings]
    return "\n".join(lines) + "\n"


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
            detail = "checksum, gzip stream and closing line verified"
        if item.restore_test and item.ok:
            detail += (f"; restored into a scratch database, {item.restore_test.tables_checked}"
                       " tables' row counts match the manifest")
        lines.append(f"{state}: {item.location}: {detail}")
    lines.append(f"verify {result.status}: {sum(item.ok for item in result.backups)} of "
                 f"{len(result.backups)} backup(s) good in {result.duration_seconds:.1f}s")
    return "\n".join(lines)


def _state(checked: bool | None) -> str:
    return "not checked" if checked is None else "ok" if checked else "BAD"


def verify_markdown(result: VerifyResult) -> str:
    icon = "✅" if result.status == "success" else "❌"
    lines = [f"### {icon} Backup verification: {result.status}", "",
             "| Backup | Checksum | Gzip | Complete | Restore test | Result |",
             "|---|---|---|---|---|---|"]
    for item in result.backups:
        test = "—" if item.restore_test is None else (
            f"{item.restore_test.tables_checked} tables match" if item.restore_test.passed
            else "; ".join(item.restore_test.mismatches))
        lines.append(f"| `{item.name}` | {item.checksum} | {_state(item.gzip_complete)}"
                     f" | {_state(item.dump_complete)} | {test} | "
                     f"{'✅' if item.ok else '❌'} |")
    return "\n".join(lines) + "\n"

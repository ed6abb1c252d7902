"""Render results for people: a terminal table, plain summaries, GitHub step summaries."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from backup_agent.actions.backup import BackupResult
from backup_agent.actions.list import ListedBackup


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


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

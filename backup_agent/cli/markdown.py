"""GitHub step summaries: a Markdown table per run, appended to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.cli.progress import human_size

if TYPE_CHECKING:
    from backup_agent.actions.backup import BackupResult
    from backup_agent.actions.drill import DrillResult
    from backup_agent.actions.restore import RestoreResult
    from backup_agent.actions.verify import VerifyResult


def append_step_summary(markdown: str) -> None:
    """Append to GitHub's job summary when running in Actions; otherwise do nothing."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with Path(target).open("a", encoding="utf-8") as summary:
            summary.write(markdown)


def failure_markdown(command: str, message: str, exit_code: int) -> str:
    return (f"### ❌ backup-agent {command}: failed (exit {exit_code})\n\n"
            f"```\n{message}\n```\n")


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


def restore_markdown(result: RestoreResult) -> str:
    icon = "🔎" if result.dry_run else "✅"
    lines = [f"### {icon} Database restore: {'dry run' if result.dry_run else 'success'}", "",
             "| | |", "|---|---|",
             f"| Backup | `{result.source}` |", f"| Target | `{result.target_database}` |",
             f"| Checksum | {result.checksum} |",
             f"| Previous database | {result.previous_database or '—'} |",
             f"| Duration | {result.duration_seconds:.1f} s |", ""]
    lines += [f"> ⚠️ {warning}" for warning in result.warnings]
    return "\n".join(lines) + "\n"


def _state(checked: bool | None) -> str:
    return "not checked" if checked is None else "ok" if checked else "BAD"


def verify_markdown(result: VerifyResult) -> str:
    good = all(item.ok for item in result.backups)
    lines = [f"### {'✅' if good else '❌'} Backup verification: "
             f"{'success' if good else 'failure'}", "",
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


def drill_markdown(result: DrillResult) -> str:
    good = result.failure() is None
    lines = [f"### {'✅' if good else '❌'} Point-in-time drill: "
             f"{'success' if good else 'failure'}", "",
             f"Base backup `{result.base_backup or 'none'}`, {result.segments_read} WAL "
             f"segment(s) read; audit: {len(result.findings)} problem(s)", ""]
    lines += [f"- ❌ {finding.line}" for finding in result.findings]
    if result.targets:
        lines += ["", "| Target (UTC) | Last commit reached | Exact | amcheck | Marker | "
                  "Duration |", "|---|---|---|---|---|---|"]
        lines += [f"| {item.target.isoformat()} | "
                  f"{item.reached_last.isoformat() if item.reached_last else 'none'} | "
                  f"{'✅' if item.passed else '❌ ' + (item.problem or '')} | {item.amcheck} | "
                  f"{item.marker} | {item.duration_seconds:.1f} s |" for item in result.targets]
    return "\n".join(lines) + "\n"

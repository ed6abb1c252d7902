"""Prometheus textfile metrics (METRICS_FILE), for node_exporter's textfile collector.

Written atomically after every backup run, success or failure. The last success's time,
duration and size survive a later failure, so an alert can fire on
`time() - backup_agent_last_success_timestamp_seconds > 26 * 3600`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from backup_agent.actions.backup import write_metrics_file

METRIC_LINE = re.compile(r'^(\w+)\{database="((?:[^"\\]|\\.)*)"\} (\S+)$')
HELP = {
    "backup_agent_last_success_timestamp_seconds": "Unix time of the last successful backup.",
    "backup_agent_last_success_duration_seconds": "Duration of the last successful backup.",
    "backup_agent_last_success_size_bytes": "Compressed size of the last successful backup.",
    "backup_agent_last_run_timestamp_seconds": "Unix time of the last backup run.",
    "backup_agent_last_run_success": "1 if the last backup run succeeded, 0 if it failed.",
    "backup_agent_last_run_exit_code": "Exit code of the last backup run.",
    "backup_agent_drill_last_run_timestamp_seconds": "Unix time of the last PITR drill.",
    "backup_agent_drill_last_run_success": "1 if the last drill proved every target, else 0.",
    "backup_agent_drill_last_run_exit_code": "Exit code of the last drill.",
    "backup_agent_drill_last_run_targets_exact": "Targets the last drill proved exact.",
    "backup_agent_drill_last_success_timestamp_seconds": "Unix time of the last passed drill.",
    "backup_agent_drill_last_success_duration_seconds": "Duration of the last passed drill.",
}


@dataclass(frozen=True)
class RunOutcome:
    database: str
    finished_at: float  # unix time
    exit_code: int
    duration_seconds: float | None = None  # set on success
    size_bytes: int | None = None  # set on success


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    """Exact text for a sample: whole numbers without a fraction, others in full."""
    return str(int(value)) if value.is_integer() else repr(value)


def read_metrics(path: Path) -> dict[tuple[str, str], float]:
    """Return {(metric, escaped database label): value} from an earlier metrics file."""
    values: dict[tuple[str, str], float] = {}
    if not path.is_file():
        return values
    for line in path.read_text(errors="replace").splitlines():
        match = METRIC_LINE.match(line)
        if match:
            try:
                values[match[1], match[2]] = float(match[3])
            except ValueError:
                continue
    return values


def write_metrics(path: Path, outcome: RunOutcome) -> None:
    """Merge this backup run's outcome into the metrics file and write it atomically."""
    updates = _run_values("backup_agent", outcome)
    if outcome.exit_code == 0:
        updates["backup_agent_last_success_size_bytes"] = float(outcome.size_bytes or 0)
    _merge(path, outcome.database, updates)


def write_drill_metrics(path: Path, outcome: RunOutcome, *, targets_exact: int) -> None:
    """Merge a drill's outcome (same labels as the backup's) and write the file atomically."""
    updates = _run_values("backup_agent_drill", outcome)
    updates["backup_agent_drill_last_run_targets_exact"] = float(targets_exact)
    _merge(path, outcome.database, updates)


def _run_values(prefix: str, outcome: RunOutcome) -> dict[str, float]:
    values = {f"{prefix}_last_run_timestamp_seconds": outcome.finished_at,
              f"{prefix}_last_run_success": 1.0 if outcome.exit_code == 0 else 0.0,
              f"{prefix}_last_run_exit_code": float(outcome.exit_code)}
    if outcome.exit_code == 0:
        values[f"{prefix}_last_success_timestamp_seconds"] = outcome.finished_at
        values[f"{prefix}_last_success_duration_seconds"] = outcome.duration_seconds or 0.0
    return values


def _merge(path: Path, database_label: str, updates: dict[str, float]) -> None:
    values = read_metrics(path)
    database = _escape(database_label)
    for metric, value in updates.items():
        values[metric, database] = value
    lines = []
    for metric, description in HELP.items():
        samples = sorted((label, value) for (name, label), value in values.items()
                         if name == metric)
        if samples:
            lines += [f"# HELP {metric} {description}", f"# TYPE {metric} gauge"]
            lines += [f'{metric}{{database="{label}"}} {_number(value)}'
                      for label, value in samples]
    write_metrics_file(path, "\n".join(lines) + "\n")

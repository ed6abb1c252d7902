"""Operating it: the status dead man's switch, Prometheus metrics, shell completion."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

from tests.conftest import AGENT, make_backup, run_agent
from tests.fabricate import fabricate_agent_backups, write_backup


def test_status_fails_without_a_backup_and_passes_after_one(agent_env: dict[str, str]) -> None:
    none = run_agent(["status", "--max-age", "26h"], agent_env)
    assert none.returncode == 11
    assert "no complete backup found" in none.stderr
    make_backup(agent_env)
    fresh = run_agent(["status", "--max-age", "26h", "--json"], agent_env)
    assert fresh.returncode == 0, fresh.stderr
    report = json.loads(fresh.stdout)
    assert report["age_hours"] < 1 and report["complete"] is True


def test_status_fails_when_the_newest_backup_is_too_old(agent_env: dict[str, str],
                                                        backup_dir: Path) -> None:
    fabricate_agent_backups(backup_dir, count=2)  # January 2026: long ago
    result = run_agent(["status", "--max-age", "26h", "--where", "local"], agent_env)
    assert result.returncode == 11
    assert "backups have stopped" in result.stderr and "over the 26h limit" in result.stderr


def test_status_ignores_backups_it_cannot_prove_complete(agent_env: dict[str, str],
                                                         backup_dir: Path) -> None:
    from datetime import UTC, datetime
    write_backup(backup_dir, datetime.now(UTC), with_manifest=False)  # the old script's
    result = run_agent(["status", "--where", "local"], agent_env)
    assert result.returncode == 11


def metrics(path: Path) -> dict[str, float]:
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r'^(\w+)\{database="[^"]*"\} (\S+)$', line)
        if match:
            values[match[1]] = float(match[2])
    return values


def test_metrics_file_records_success_then_keeps_it_through_a_failure(
        agent_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "backup_agent.prom"
    path.parent.mkdir()
    environment = {**agent_env, "METRICS_FILE": str(path)}
    report = make_backup(environment)
    first = metrics(path)
    assert first["backup_agent_last_run_success"] == 1
    assert first["backup_agent_last_success_size_bytes"] == report["size_bytes"]
    assert first["backup_agent_last_success_timestamp_seconds"] > 1.7e9
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # node_exporter must read it
    assert "# TYPE backup_agent_last_run_success gauge" in path.read_text()

    failed = run_agent(["backup"], {**environment, "POSTGRES_PASSWORD": "wrong"})
    assert failed.returncode == 3
    second = metrics(path)
    assert second["backup_agent_last_run_success"] == 0
    assert second["backup_agent_last_run_exit_code"] == 3
    assert second["backup_agent_last_success_timestamp_seconds"] == \
        first["backup_agent_last_success_timestamp_seconds"]
    assert agent_env["POSTGRES_PASSWORD"] not in path.read_text()
    assert not list(path.parent.glob(".tmp-*"))


def test_an_unwritable_metrics_file_does_not_fail_the_backup(agent_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    result = run_agent(["backup"], {**agent_env,
                                    "METRICS_FILE": str(tmp_path / "missing-dir" / "m.prom")})
    assert result.returncode == 0, result.stderr
    assert "could not write METRICS_FILE" in result.stderr


def test_shell_completion_is_available(agent_env: dict[str, str]) -> None:
    # typer finds the shell among the process's ancestors, as when a user types it in bash
    # (`; exit` keeps bash as the parent instead of letting it exec the agent).
    result = subprocess.run(["bash", "-c", f"{AGENT} --show-completion; exit $?"],
                            env=agent_env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "complete" in result.stdout and "backup-agent" in result.stdout.lower()

"""Retention: exactly KEEP_LOCAL of the agent's newest backups stay; nothing else is touched."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_agent
from tests.fabricate import (
    OLDEST,
    fabricate_agent_backups,
    flip_a_bit,
    snapshot_files,
    write_backup,
)


def add_foreign_files(backup_dir: Path, outside: Path) -> dict[str, bytes | str]:
    """Files retention must never delete or follow; return their snapshot."""
    # A backup from the guide's old shell script: no manifest, older than everything.
    write_backup(backup_dir, OLDEST.replace(year=2025), with_manifest=False)
    (backup_dir / "db_backup_latest.sql.gz").write_bytes(b"a name that only looks like one")
    (backup_dir / "notes.txt").write_text("the operator's notes\n")
    (backup_dir / "db_backup_20240101_000000.sql.gz").mkdir()  # a directory, not a backup
    outside.mkdir()
    target_name = write_backup(outside, OLDEST.replace(year=2023))
    (backup_dir / target_name).symlink_to(outside / target_name)  # a link, never followed
    return {name: content for name, content in snapshot_files(backup_dir).items()
            if not name.startswith("db_backup_2026")}


def test_backup_keeps_exactly_the_seven_newest_and_leaves_foreign_files_alone(
        agent_env: dict[str, str], backup_dir: Path, tmp_path: Path) -> None:
    old = fabricate_agent_backups(backup_dir, count=9)
    foreign = add_foreign_files(backup_dir, tmp_path / "elsewhere")
    outside_before = snapshot_files(tmp_path / "elsewhere")

    result = run_agent(["backup", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    new = report["name"]

    kept = sorted(path.name for path in backup_dir.glob("db_backup_2026*.sql.gz"))
    assert kept == sorted([*old[-6:], new])
    assert sorted(report["pruned"], reverse=True) == sorted(old[:3], reverse=True)
    for name in old[:3]:  # deleted together with their sidecars
        assert not list(backup_dir.glob(f"{name}*"))
    for name in old[-6:]:
        assert (backup_dir / f"{name}.sha256").exists()
        assert (backup_dir / f"{name}.manifest.json").exists()
    after = snapshot_files(backup_dir)
    assert {name: after.get(name) for name in foreign} == foreign
    assert snapshot_files(tmp_path / "elsewhere") == outside_before


def test_prune_dry_run_names_what_would_go_and_deletes_nothing(
        agent_env: dict[str, str], backup_dir: Path, tmp_path: Path) -> None:
    old = fabricate_agent_backups(backup_dir, count=10)
    add_foreign_files(backup_dir, tmp_path / "elsewhere")
    before = snapshot_files(backup_dir)

    result = run_agent(["prune", "--dry-run", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["would_delete"] == list(reversed(old[:3]))
    assert snapshot_files(backup_dir) == before

    text = run_agent(["prune", "--dry-run"], agent_env)
    assert "would delete 3 backup(s), keeping the 7 newest good ones" in text.stdout
    assert "without a backup-agent manifest alone" in text.stderr


def test_prune_deletes_beyond_keep_local(agent_env: dict[str, str], backup_dir: Path) -> None:
    old = fabricate_agent_backups(backup_dir, count=5)
    result = run_agent(["prune", "--keep-local", "2"], agent_env)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in backup_dir.glob("*.sql.gz")) == old[-2:]


def test_a_damaged_backup_outlives_later_backups_and_dry_run_says_what_prune_does(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    """The README's rule: damaged backups are never deleted, only reported."""
    old = fabricate_agent_backups(backup_dir, count=3)
    damaged = backup_dir / old[1]
    flip_a_bit(damaged)
    environment = {**agent_env, "KEEP_LOCAL": "2"}
    for _run in range(3):
        dry = run_agent(["prune", "--dry-run", "--json"], environment)
        real = run_agent(["prune", "--json"], environment)
        assert dry.returncode == real.returncode == 0, dry.stderr + real.stderr
        planned, done = json.loads(dry.stdout), json.loads(real.stdout)
        assert planned["would_delete"] == done["deleted"]
        assert planned["damaged_kept"] == done["damaged_kept"] == [old[1]]
        assert planned["warnings"] == done["warnings"]
        assert f"backup {damaged} is damaged" in planned["warnings"][0]

        backed_up = run_agent(["backup"], environment)
        assert backed_up.returncode == 0, backed_up.stderr
        assert backed_up.stderr.count(f"backup {damaged} is damaged") == 1
        assert "left for inspection" in backed_up.stderr
        for suffix in ("", ".sha256", ".manifest.json"):
            assert Path(f"{damaged}{suffix}").exists()
    good = sorted(path.name for path in backup_dir.glob("db_backup_*.sql.gz"))
    assert old[0] not in good and old[2] not in good and len(good) == 3  # 2 kept + damaged

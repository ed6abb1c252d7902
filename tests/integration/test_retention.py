"""Retention on a real directory: the KEEP_LOCAL newest good backups stay, damage is kept."""

from __future__ import annotations

from pathlib import Path

from backup_agent.catalog import retention
from backup_agent.model.settings import PostgresSettings, RetentionCheck, S3Settings, Settings
from backup_agent.storage import local
from tests.fabricate import fabricate_agent_backups, flip_a_bit, write_backup


def test_damaged_backups_are_kept_and_not_counted(tmp_path: Path) -> None:
    names = fabricate_agent_backups(tmp_path, count=5)
    flip_a_bit(tmp_path / names[-1])  # the newest is damaged
    plan = retention.plan_retention(local.scan(tmp_path), 2)
    assert [backup.name for backup in plan.keep] == [names[3], names[2]]
    assert [backup.name for backup in plan.bad] == [names[4]]
    assert [backup.name for backup in plan.delete] == [names[1], names[0]]


def test_size_checks_skip_hashing_but_catch_a_truncation(tmp_path: Path) -> None:
    names = fabricate_agent_backups(tmp_path, count=2)
    flip_a_bit(tmp_path / names[1])
    plan = retention.plan_retention(local.scan(tmp_path), 1, check=RetentionCheck.SIZE)
    assert [backup.name for backup in plan.keep] == [names[1]]  # same size: not caught
    (tmp_path / names[1]).write_bytes(b"short")
    plan = retention.plan_retention(local.scan(tmp_path), 1, check=RetentionCheck.SIZE)
    assert [backup.name for backup in plan.bad] == [names[1]]


def test_prune_deletes_only_its_own_backups_with_their_sidecars(tmp_path: Path) -> None:
    names = fabricate_agent_backups(tmp_path, count=3)
    foreign = write_backup(tmp_path, local.scan(tmp_path)[-1].created.replace(year=2025),
                           with_manifest=False)
    settings = Settings(postgres=PostgresSettings(database="shop"), s3=S3Settings(),
                        backup_directory=tmp_path, keep_local=1)
    plan = retention.prune(settings, dry_run=False)
    assert [backup.name for backup in plan.foreign] == [foreign]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([
        foreign, f"{foreign}.sha256", names[2], f"{names[2]}.sha256",
        f"{names[2]}.manifest.json"])

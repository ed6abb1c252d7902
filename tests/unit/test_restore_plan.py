"""actions/restore.py's plan, pure: which databases a restore makes and the steps it shows
(the dry run prints them, the prompt asks about them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from backup_agent.model.backup import BackupRef, Where
from backup_agent.model.settings import PostgresSettings, S3Settings, Settings
from backup_agent.restoring.plan import RestorePlan, make_plan

MOMENT = datetime(2026, 2, 28, 11, 0, 0, tzinfo=UTC)
STAMP = "20260228_110000"
SETTINGS = Settings(postgres=PostgresSettings(database="shop"), s3=S3Settings(),
                    app_containers=("web", "worker"))


def backup(name: str = "db_backup_20260228_100000.sql.gz", *,
           where: Where = Where.LOCAL) -> BackupRef:
    return BackupRef(name=name, where=where, location=f"/backups/{name}", size=10,
                     created=MOMENT, has_checksum=True, has_manifest=True,
                     path=Path("/backups") / name)


def plan(settings: Settings = SETTINGS, *, target_db: str | None = None,
         drop_previous: bool = False, no_owner: bool = False,
         source: BackupRef | None = None) -> RestorePlan:
    return make_plan(settings, source or backup(), target_db=target_db,
                     drop_previous=drop_previous, no_owner=no_owner, moment=MOMENT)


def test_a_swap_builds_beside_the_database_and_keeps_it_for_rollback() -> None:
    swap = plan(drop_previous=True)
    assert (swap.target, swap.build, swap.previous) == \
        ("shop", f"shop_restore_{STAMP}", f"shop_pre_restore_{STAMP}")
    assert swap.swap and swap.drop_previous and swap.stop_containers == ["web", "worker"]
    steps = swap.steps()
    assert steps[0].startswith("prove /backups/db_backup_20260228_100000.sql.gz: SHA-256")
    assert steps[1] == f"create empty database shop_restore_{STAMP}"
    assert steps[-5:] == [
        "stop app containers: web, worker",
        f"swap atomically: shop -> shop_pre_restore_{STAMP}, shop_restore_{STAMP} -> shop",
        "start app containers: web, worker",
        f"drop shop_pre_restore_{STAMP}",
        f"on any failure: drop shop_restore_{STAMP}; shop stays as it is"]


def test_a_target_database_is_a_rename_with_no_swap_no_stops_and_nothing_dropped() -> None:
    beside = plan(target_db="staging", drop_previous=True)
    assert (beside.build, beside.previous, beside.swap) == (f"staging_restore_{STAMP}", None,
                                                            False)
    assert beside.stop_containers == [] and not beside.drop_previous
    assert beside.steps()[-2:] == [f"rename staging_restore_{STAMP} -> staging",
                                   f"on any failure: drop staging_restore_{STAMP}; staging "
                                   "stays as it is"]


def test_skip_app_stop_stops_nothing() -> None:
    settings = Settings(postgres=SETTINGS.postgres, s3=S3Settings(),
                        app_containers=("web",), skip_app_stop=True)
    assert plan(settings).stop_containers == []
    assert not any("containers" in step for step in plan(settings).steps())


def test_a_server_without_the_database_renames_and_keeps_nothing() -> None:
    missing = plan()
    missing.target_missing = True
    assert f"rename shop_restore_{STAMP} -> shop (this server has no shop yet: nothing to " \
        "swap out or keep)" in missing.steps()
    assert not any(step.startswith("swap") for step in missing.steps())


def test_with_globals_roles_and_properties_are_steps_and_no_owner_says_what_it_leaves_out(
        ) -> None:
    with_roles = plan().steps(with_globals=True)
    assert with_roles[1].startswith("create the roles it needs that this server lacks")
    assert with_roles[2].endswith("locales and owner")
    assert with_roles[-1].endswith("and the roles it created; shop stays as it is")
    without = plan(no_owner=True).steps(with_globals=True)
    assert without[1] == "create no roles, and leave out ownership and grants (--no-owner)"
    assert "privileges" not in " ".join(without)
    assert without[-1] == f"on any failure: drop shop_restore_{STAMP}; shop stays as it is"


def test_a_backup_from_s3_is_spooled_and_an_encrypted_one_decrypted() -> None:
    remote = plan(source=backup("db_backup_20260228_100000.sql.gz.age", where=Where.S3))
    steps = " ".join(remote.steps())
    assert "decrypting it (age)" in steps and "kept in a private spool file" in steps
    assert "re-read through the same open file" in " ".join(plan().steps())


def test_the_rollback_hint_quotes_names_and_never_renames_onto_the_same_name() -> None:
    from backup_agent.actions.restore import RestoreResult

    long_name = "a" * 60 + 'x"y'  # 63 bytes: a name PostgreSQL keeps whole
    result = RestoreResult(dry_run=False, source="s", source_name="n",
                           target_database=long_name, previous_database="p_pre_restore_1",
                           checksum="ok", verified=True, source_size_bytes=1,
                           source_created="c", duration_seconds=0.0)
    hint = result.rollback_hint
    assert hint is not None
    quoted = '"' + "a" * 60 + 'x""y"'
    bad = '"' + "a" * 59 + '_bad"'
    assert hint == (f"to roll back: ALTER DATABASE {quoted} RENAME TO {bad}; "
                    f'ALTER DATABASE "p_pre_restore_1" RENAME TO {quoted};')


def test_a_restore_to_a_time_names_the_kept_database_and_the_way_back() -> None:
    from backup_agent.actions.restore import RestoreResult
    from backup_agent.cli.render import restore_summary

    result = RestoreResult(dry_run=False, source="base and WAL", source_name="n",
                           target_database="shop", previous_database="shop_pre_restore_1",
                           checksum="ok", verified=True, source_size_bytes=1,
                           source_created="c", duration_seconds=3.0,
                           to_time="2026-12-02T14:03:00+00:00",
                           last_commit="2026-12-02T14:02:59+00:00")
    text = restore_summary(result)
    assert "is now as of 2026-12-02T14:03:00+00:00" in text
    assert "previous database kept as shop_pre_restore_1" in text
    assert 'to roll back: ALTER DATABASE "shop" RENAME TO' in text

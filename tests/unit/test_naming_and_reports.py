"""Names, keys and human-readable rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from backup_agent.cli.progress import human_size
from backup_agent.cli.render import human_age
from backup_agent.model.naming import backup_name, created_at, s3_key


def test_backup_name_is_utc() -> None:
    seoul = timezone(timedelta(hours=9))
    assert backup_name(datetime(2026, 2, 28, 11, 0, 0, tzinfo=seoul)) == \
        "db_backup_20260228_020000.sql.gz"


@pytest.mark.parametrize("name", [
    "db_backup_latest.sql.gz", "db_backup_20260228_110000.sql", "db_backup_20261399_999999.sql.gz",
    "xdb_backup_20260228_110000.sql.gz", "db_backup_20260228_110000.sql.gz.sha256"])
def test_names_that_only_look_like_backups_are_not(name: str) -> None:
    assert created_at(name) is None


def test_s3_keys_follow_the_guide() -> None:
    name = "db_backup_20260228_110000.sql.gz"
    assert created_at(name) == datetime(2026, 2, 28, 11, 0, tzinfo=UTC)
    assert s3_key("backups/", name) == "backups/2026/02/db_backup_20260228_110000.sql.gz"
    assert s3_key("", name + ".sha256") == "2026/02/db_backup_20260228_110000.sql.gz.sha256"


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1536, "1.5 KiB"),
                                            (5 * 1024 ** 3, "5.0 GiB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_human_age() -> None:
    now = datetime(2026, 3, 10, tzinfo=UTC)
    assert human_age(now - timedelta(minutes=5), now) == "5m"
    assert human_age(now - timedelta(hours=26, minutes=3), now) == "26h03m"
    assert human_age(now - timedelta(days=9), now) == "9d"

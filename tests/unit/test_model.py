"""The model: one record per backup, one "latest complete", age keys checked without age."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyrage
import pytest
from pyrage import x25519

from backup_agent.model.age_keys import is_valid_recipient, parse_recipients
from backup_agent.model.backup import (
    BackupRef,
    Where,
    dated_ahead,
    newest_complete,
    newest_first,
)
from backup_agent.model.errors import ConfigurationError


def ref(day: int, *, where: Where = Where.LOCAL, checksum: bool = True,
        manifest: bool = True, tool: str = "backup-agent") -> BackupRef:
    name = f"db_backup_202601{day:02d}_020000.sql.gz"
    return BackupRef(name=name, where=where, location=name, size=1,
                     created=datetime(2026, 1, day, 2, tzinfo=UTC), has_checksum=checksum,
                     has_manifest=manifest, manifest={"tool": tool} if manifest else None)


def test_latest_complete_skips_what_cannot_be_proven() -> None:
    backups = [ref(5, checksum=False), ref(4, manifest=False), ref(3, tool="pg_back"),
               ref(2), ref(1)]
    now = datetime(2026, 1, 6, tzinfo=UTC)
    newest = newest_complete(backups, now)
    assert newest is not None and newest.created.day == 2
    assert newest_complete([ref(4, manifest=False)], now) is None


def test_a_name_dated_in_the_future_is_never_the_latest() -> None:
    now = datetime(2026, 1, 3, 1, 55, tzinfo=UTC)  # day 3's backup is 5 minutes ahead: ok
    assert newest_complete([ref(3), ref(1)], now) is not None
    assert newest_complete([ref(3), ref(1)], now).created.day == 3  # type: ignore[union-attr]
    later = datetime(2026, 1, 2, 12, tzinfo=UTC)
    assert newest_complete([ref(3), ref(1)], later).created.day == 1  # type: ignore[union-attr]
    assert dated_ahead([ref(3), ref(1)], later) and not dated_ahead([ref(1)], later)


def test_age_counts_from_the_earlier_of_name_and_storage() -> None:
    backup = replace(ref(1), modified=datetime(2026, 1, 1, 0, tzinfo=UTC))
    assert backup.age(datetime(2026, 1, 2, 2, tzinfo=UTC)) == timedelta(hours=26)


def test_the_same_backup_in_both_places_lists_local_first() -> None:
    assert [item.where for item in newest_first([ref(1, where=Where.S3), ref(1)])] == [
        Where.LOCAL, Where.S3]


def test_details_that_fail_to_parse_leave_a_backup_incomplete() -> None:
    listed = ref(1, manifest=True)
    assert listed.with_details(manifest=None, expected_sha256="a" * 64).complete is False


def test_age_recipients_are_checked_like_age_checks_them() -> None:
    for _ in range(50):
        recipient = str(x25519.Identity.generate().to_public())
        assert is_valid_recipient(recipient)
        typo = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")
        with pytest.raises(pyrage.RecipientError):
            x25519.Recipient.from_str(typo)
        assert not is_valid_recipient(typo)
    assert parse_recipients(f"{recipient}, {recipient}") == (recipient, recipient)
    with pytest.raises(ConfigurationError, match="not an age public key"):
        parse_recipients("AGE-SECRET-KEY-1ABC")
    with pytest.raises(ConfigurationError, match="not a valid age public key"):
        parse_recipients(typo)


def test_ages_read_in_one_unit_a_person_takes_in_at_a_glance() -> None:
    from datetime import timedelta

    from backup_agent.model.durations import age_text

    assert [age_text(timedelta(seconds=value)) for value in (4.6, 125, 3725, 200_000)] == \
        ["4s", "2m", "1h02m", "2d"]

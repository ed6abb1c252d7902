"""The databases a restore or restore test makes are named, recognised and dated in one place;
`prune --databases` finds each one whatever the length or the script of the name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backup_agent.model.database_names import (
    IDENTIFIER_LIMIT,
    KINDS,
    derived_name,
    is_derived_from,
    leftovers_of,
    stamped_at,
)

MOMENT = datetime(2026, 2, 28, 11, 0, 0, tzinfo=UTC)
STAMP = "20260228_110000"


@pytest.mark.parametrize("database", [
    "app",
    "a" * 35,  # the longest whose rollback copy kept its whole name
    "a" * 36,  # from here on the rollback copy is shortened
    "a" * 40,  # ... and the scratch database too
    "a" * IDENTIFIER_LIMIT,  # the longest name PostgreSQL allows
    "é" * 31 + "e",  # 63 bytes of two-byte characters, then one
    "日本" * 10 + "x" * 3,  # 63 bytes, three-byte characters
    "😀" * 15 + "abc",  # 63 bytes, four-byte characters
])
@pytest.mark.parametrize("kind", KINDS)
def test_every_derived_name_fits_and_is_recognised_as_its_databases(database: str,
                                                                      kind: str) -> None:
    name = derived_name(database, f"_{kind}_{STAMP}")
    assert len(name.encode()) <= IDENTIFIER_LIMIT
    assert name.endswith(f"_{kind}_{STAMP}") and database.startswith(name[:-len(kind) - 17])
    name.encode().decode()  # cut on a character boundary: still valid UTF-8
    assert is_derived_from(database, name)
    assert leftovers_of(database, [name, database, "postgres"]) == [name]
    assert stamped_at(name) == MOMENT


def test_a_multibyte_name_is_cut_before_a_character_not_inside_it() -> None:
    database = "é" * 31 + "e"  # 63 bytes
    name = derived_name(database, f"_restore_{STAMP}")  # 24 bytes of suffix: 39 for the base
    assert name == "é" * 19 + f"_restore_{STAMP}"  # 38 bytes: half an é would make 39
    assert len(name.encode()) == 62


def test_a_63_byte_name_keeps_as_much_of_itself_as_fits() -> None:
    database = "d" * IDENTIFIER_LIMIT
    for kind in KINDS:
        assert len(derived_name(database, f"_{kind}_{STAMP}").encode()) == IDENTIFIER_LIMIT


@pytest.mark.parametrize("name", [
    "app",  # the database itself
    "app_restore_manual",  # no stamp
    "app_backup_20260228_110000",  # not a kind the agent makes
    "apple_pre_restore_20260228_110000",  # another database's
    "ap_pre_restore_20260228_110000",  # a shorter one's
    "app_pre_restore_20260228_110000_copy",
])
def test_names_that_are_not_this_databases_leftovers(name: str) -> None:
    assert not is_derived_from("app", name)


def test_a_long_databases_leftovers_are_not_a_shorter_prefixs() -> None:
    database = "a" * 50
    name = derived_name(database, f"_pre_restore_{STAMP}")
    assert is_derived_from(database, name) and not is_derived_from("a" * 20, name)
    assert is_derived_from("a" * 35, name)  # the same 35 bytes: indistinguishable, as in PostgreSQL


def test_a_stamp_that_is_no_date_has_no_age() -> None:
    assert stamped_at("app_pre_restore_20261399_999999") is None
    assert stamped_at("app_pre_restore_manual") is None


def test_made_names_carry_their_kind_and_the_moment_s_utc_stamp() -> None:
    from datetime import timedelta, timezone

    from backup_agent.model.database_names import BUILDING, ROLLBACK, SCRATCH, made_name

    seoul = MOMENT.astimezone(timezone(timedelta(hours=9)))
    assert [made_name("shop", kind, seoul) for kind in (BUILDING, ROLLBACK, SCRATCH)] == \
        [f"shop_restore_{STAMP}", f"shop_pre_restore_{STAMP}", f"shop_verify_{STAMP}"]
    assert all(is_derived_from("shop", made_name("shop", kind, MOMENT)) for kind in KINDS)

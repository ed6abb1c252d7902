"""Pure pieces behind the operator's view: leftover databases by age, help paragraphs, and
which settings a duration may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backup_agent.actions.prune import plan_databases
from backup_agent.cli.help import rewrapped
from backup_agent.model.durations import human_duration
from backup_agent.model.errors import ConfigurationError
from backup_agent.model.settings import resolve_settings

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
OLD = "app_pre_restore_20261120_120000"
YOUNG = "app_pre_restore_20261126_115950"
UNSTAMPED = "app_pre_restore_manual"


def test_leftovers_younger_than_the_minimum_age_stay_unless_named() -> None:
    plan = plan_databases([OLD, YOUNG, UNSTAMPED], named=(), min_age=timedelta(hours=24),
                          now=NOW)
    assert [item.name for item in plan.drop] == [OLD, UNSTAMPED]  # no stamp: no age to spare
    assert [item.name for item in plan.young] == [YOUNG]
    assert plan.young[0].age(NOW) == timedelta(seconds=10)
    named = plan_databases([OLD, YOUNG], named=[YOUNG], min_age=timedelta(hours=24), now=NOW)
    assert [item.name for item in named.drop] == [OLD, YOUNG] and named.young == []


def test_naming_a_database_that_is_no_leftover_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="app is not a database a restore"):
        plan_databases([OLD], named=["app"], min_age=timedelta(hours=24), now=NOW)


def test_help_paragraphs_lose_their_source_newlines_only() -> None:
    assert rewrapped("One line\n    continued.\n\n    Second\n    paragraph.") == \
        "One line continued.\n\nSecond paragraph."


@pytest.mark.parametrize(("variables", "lock_seconds", "connect_seconds"), [
    ({}, 300, 30),
    ({"LOCK_WAIT_TIMEOUT": "2s", "PGCONNECT_TIMEOUT": "5"}, 2, 5),
    ({"LOCK_WAIT_TIMEOUT": "90", "PGCONNECT_TIMEOUT": "1"}, 90, 2),  # libpq's minimum is 2
])
def test_waits_resolve_from_the_environment(variables: dict[str, str], lock_seconds: int,
                                            connect_seconds: int) -> None:
    settings = resolve_settings({}, variables)
    assert settings.postgres.lock_wait == timedelta(seconds=lock_seconds)
    assert settings.postgres.connect_timeout_seconds == connect_seconds
    assert settings.rollback_min_age == timedelta(hours=24)


@pytest.mark.parametrize("variable", ["LOCK_WAIT_TIMEOUT", "PGCONNECT_TIMEOUT",
                                      "ROLLBACK_MIN_AGE"])
def test_a_bad_or_zero_duration_names_its_variable(variable: str) -> None:
    for text in ("soon", "0s"):
        with pytest.raises(ConfigurationError, match=f"fix {variable}"):
            resolve_settings({}, {variable: text})


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (5400, "1.5h"), (86400, "24h"),
                                               (26 * 3600, "26h"), (3 * 86400, "3d")])
def test_durations_read_as_an_operator_writes_them(seconds: int, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text

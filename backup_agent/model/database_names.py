"""The databases a restore or a restore test makes beside the real one, named after it.

`<db>_restore_<stamp>` is the one being built, `<db>_pre_restore_<stamp>` the rollback copy a
swap keeps, `<db>_verify_<stamp>` the restore test's scratch database. PostgreSQL keeps 63
bytes of a name, so a long `<db>` is shortened (on a character boundary) until the whole
fits. This is the one home of that convention: building, recognising and reading the stamp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from backup_agent.model.naming import STAMP_FORMAT

IDENTIFIER_LIMIT = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1), in bytes
# What each made database is: half-built, the rollback copy, the restore test's scratch.
BUILDING, ROLLBACK, SCRATCH = "restore", "pre_restore", "verify"
KINDS = (ROLLBACK, BUILDING, SCRATCH)
STAMP = re.compile(r"_(\d{8}_\d{6})\Z")


def made_name(database: str, kind: str, moment: datetime) -> str:
    """Return the name of the `kind` (BUILDING, ROLLBACK, SCRATCH) database that a restore or
    restore test of `database` started at `moment` makes."""
    return derived_name(database, f"_{kind}_{moment.astimezone(UTC).strftime(STAMP_FORMAT)}")


def derived_name(base: str, suffix: str) -> str:
    """Return `base + suffix`, shortening base so the whole fits PostgreSQL's name limit."""
    room = IDENTIFIER_LIMIT - len(suffix.encode())
    shortened = base.encode()[:room].decode(errors="ignore")
    return shortened + suffix


def is_derived_from(database: str, name: str) -> bool:
    """True when `name` is what a restore or restore test of `database` names a database."""
    stamp = STAMP.search(name)
    if stamp is None:
        return False
    head = name[:stamp.start()]
    return any(head.endswith(f"_{kind}") and derived_name(database, f"_{kind}{stamp[0]}") == name
               for kind in KINDS)


def leftovers_of(database: str, names: Iterable[str]) -> list[str]:
    """Return, sorted, the `names` a restore or restore test of `database` made."""
    return sorted(name for name in names if is_derived_from(database, name))


def stamped_at(name: str) -> datetime | None:
    """Return the UTC time in a derived name's stamp, or None if it carries no valid one."""
    match = STAMP.search(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match[1], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # 20261399_999999 matches the pattern but is no date
        return None

"""Row-level security policies that name roles a server lacks, for `restore --no-owner`.

`--no-owner` creates no role, so `CREATE POLICY … TO shop_ro` would stop the restore. Such a
policy (and its comment) is left out, whole statement by whole statement, and named instead;
row-level security stays enabled on its table, so without the policy the rows are hidden
from everyone but the owner: the safe side. pg_dump writes each policy as:
`CREATE POLICY name ON schema.table [AS …] [FOR …] [TO role, role] [USING (…)] [WITH CHECK (…)];`
with every name as quote_ident makes it.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r'"(?:[^"]|"")*"|[^\s",.;()]+')
_PSEUDO_ROLES = {"public", "current_user", "current_role", "session_user"}


def _identifier(text: str, at: int) -> tuple[str, int] | None:
    match = _IDENTIFIER.match(text, at)
    if match is None:
        return None
    word = match.group()
    name = word[1:-1].replace('""', '"') if word.startswith('"') else word
    return name, match.end()


def _qualified(text: str, at: int) -> tuple[str, int] | None:
    parts = []
    while (found := _identifier(text, at)) is not None:
        parts.append(found[0])
        at = found[1]
        if not text.startswith(".", at):
            return ".".join(parts), at
        at += 1
    return None


def _policy_key(text: str, prefix: str) -> tuple[str, str, int] | None:
    """(policy name, table, position after the table) of a line starting with `prefix`."""
    if not text.startswith(prefix):
        return None
    name = _identifier(text, len(prefix))
    if name is None or not text.startswith(" ON ", name[1]):
        return None
    table = _qualified(text, name[1] + 4)
    return None if table is None else (name[0], table[0], table[1])


def _roles(text: str, at: int) -> list[str]:
    """The names after ` TO ` (none when the policy applies to PUBLIC)."""
    match = re.compile(r"(?: AS \w+)?(?: FOR \w+)? TO ").match(text, at)
    if match is None:
        return []
    roles, at = [], match.end()
    while (found := _identifier(text, at)) is not None:
        roles.append(found[0])
        at = found[1]
        if not text.startswith(", ", at):
            break
        at += 2
    return roles


def policy_name(text: str, prefix: str) -> str | None:
    """`policy on table` for a statement starting with `prefix`, or None."""
    key = _policy_key(text, prefix)
    return None if key is None else f"{key[0]} on {key[1]}"


def policy_roles(text: bytes, existing: frozenset[str]) -> tuple[str, list[str]]:
    """`policy on table` of a CREATE POLICY, and the roles it names that do not exist."""
    decoded = text.decode("utf-8", "replace")
    key = _policy_key(decoded, "CREATE POLICY ")
    if key is None:
        return "", []
    missing = [role for role in _roles(decoded, key[2])
               if role.lower() not in _PSEUDO_ROLES and role not in existing]
    return f"{key[0]} on {key[1]}", missing

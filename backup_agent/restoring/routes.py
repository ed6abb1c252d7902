"""Which session runs a statement of a proven dump, decided from its skeleton alone.

Code from a dump runs only as the *builder*: a temporary login role with no attribute, no
membership and no right outside the database being built. So a function the dump holds (a
CHECK, a generated column, an index expression, a materialized view) can do no more there
than the data it builds, whoever wrote it. The restoring user (*admin*) runs only
statements whose grammar has no place for an expression (privileges, comments, ownership),
and the few kinds only a superuser may create; of those, the ones that could bring code of
their own (C functions, untrusted languages, foreign-data wrappers) only from a backup with
a trusted signature. Ownership is given at the end, event triggers are created last.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum


class Route(Enum):
    BUILDER = "builder"  # runs as the powerless builder role
    ADMIN = "admin"  # metadata, or superuser-only kinds that run no code of the dump
    TRUSTED_ADMIN = "trusted admin"  # superuser-only and could bring code: signed backups only
    OWNERSHIP = "ownership"  # ALTER ... OWNER TO: given at the end, by the admin
    EVENT_TRIGGER = "event trigger"  # created after everything else (signed backups only)
    SETTING = "setting"  # a session setting: every session
    AUTHORIZATION = "authorization"  # SET / RESET SESSION AUTHORIZATION around grants
    TRANSACTION = "transaction"  # BEGIN / COMMIT around large objects: the builder's
    SCHEMA = "schema"  # CREATE SCHEMA name: the admin's, the builder may create in it
    SERVER = "server"  # CREATE SERVER: the admin's, the builder may use it
    PRIVILEGE = "privilege"  # GRANT / REVOKE: the builder's (it owns what it may grant on)


# Kinds a superuser must create; none runs an expression from the dump when created, nor
# changes how the agent's own queries or the builder's rights resolve.
_ADMIN_KINDS = (
    ("CREATE", "EXTENSION"), ("ALTER", "EXTENSION"),
    ("CREATE", "PUBLICATION"), ("ALTER", "PUBLICATION"),
    ("CREATE", "SUBSCRIPTION"), ("ALTER", "SUBSCRIPTION"), ("ALTER", "SERVER"),
    ("ALTER", "DEFAULT", "PRIVILEGES"),
)
# Superuser-only kinds that bring code of their own (a wrapper's validator, a language's
# handler) or reach past the database being built: a cast or an operator class on built-in
# types changes what the agent's own queries call; a foreign table evaluates its partition
# bound and carries file_fdw's `program`/`filename`; a user mapping can waive a password;
# a text search parser or template may wire built-ins that do not belong together (one
# dictionary's init, another's lexize: the server's process crashes on the wrong state),
# and so may an access method's handler.
# From a trusted backup only; the builder cannot create them, so an unsigned one fails.
_TRUSTED_ADMIN_KINDS = (
    ("CREATE", "CAST"), ("CREATE", "OPERATOR", "CLASS"), ("CREATE", "OPERATOR", "FAMILY"),
    ("ALTER", "OPERATOR", "FAMILY"), ("ALTER", "OPERATOR", "CLASS"),
    ("CREATE", "FOREIGN", "TABLE"), ("ALTER", "FOREIGN", "TABLE"),
    ("CREATE", "USER", "MAPPING"), ("ALTER", "USER", "MAPPING"),
    ("CREATE", "FOREIGN", "DATA", "WRAPPER"), ("ALTER", "FOREIGN", "DATA", "WRAPPER"),
    ("CREATE", "LANGUAGE"), ("CREATE", "PROCEDURAL", "LANGUAGE"),
    ("CREATE", "TRUSTED", "LANGUAGE"), ("CREATE", "TRUSTED", "PROCEDURAL", "LANGUAGE"),
    ("CREATE", "OR", "REPLACE", "LANGUAGE"), ("CREATE", "OR", "REPLACE", "PROCEDURAL"),
    ("CREATE", "OR", "REPLACE", "TRUSTED"), ("ALTER", "LANGUAGE"),
    ("ALTER", "PROCEDURAL", "LANGUAGE"), ("CREATE", "TRANSFORM"),
    ("CREATE", "OR", "REPLACE", "TRANSFORM"),
    ("CREATE", "TEXT", "SEARCH", "PARSER"), ("CREATE", "TEXT", "SEARCH", "TEMPLATE"),
    ("CREATE", "ACCESS", "METHOD"),
)
# Languages anyone may write functions in (more are looked up on the server).
SAFE_LANGUAGES = frozenset({"sql", "plpgsql"})
_NAME_TOKENS = frozenset({".", ",", "(", ")", "[", "]"})
_OPERATOR_CHARACTERS = frozenset("+-*/<>=~!@#%^&|`?")  # an operator's name


def route(parts: Sequence[str], *, trusted_languages: frozenset[str] = SAFE_LANGUAGES) -> Route:
    """The session that runs this statement (its skeleton, as statement_rules reads it)."""
    upper = [part.upper() for part in parts]
    if upper[1:3] == ["SESSION", "AUTHORIZATION"] and upper[0] in ("SET", "RESET"):
        return Route.AUTHORIZATION
    if upper[0] == "SET" or upper[:4] == ["SELECT", "PG_CATALOG", ".", "SET_CONFIG"]:
        return Route.SETTING
    if upper[0] in ("BEGIN", "COMMIT"):
        return Route.TRANSACTION
    if _about_event_trigger(upper):
        return Route.EVENT_TRIGGER
    if is_ownership(parts):
        return Route.OWNERSHIP
    if upper[:2] == ["CREATE", "SCHEMA"] and len(parts) == 3 and _is_name(parts[2]):
        return Route.SCHEMA
    if upper[:2] == ["CREATE", "SERVER"]:
        return Route.SERVER
    if upper[0] in ("GRANT", "REVOKE"):
        return Route.PRIVILEGE
    if upper[0] == "COMMENT" or upper[:2] == ["SECURITY", "LABEL"]:
        return Route.ADMIN
    if any(_starts(upper, kind) for kind in _TRUSTED_ADMIN_KINDS) or _is_base_type(upper):
        return Route.TRUSTED_ADMIN
    if any(_starts(upper, kind) for kind in _ADMIN_KINDS):
        return Route.ADMIN
    language = function_language(parts)
    if language is not None and (language not in trusted_languages or "LEAKPROOF" in upper):
        return Route.TRUSTED_ADMIN
    return Route.BUILDER


def _starts(upper: Sequence[str], kind: Sequence[str]) -> bool:
    return list(upper[:len(kind)]) == list(kind)


def _about_event_trigger(upper: Sequence[str]) -> bool:
    """CREATE/ALTER EVENT TRIGGER, and COMMENT or SECURITY LABEL on one."""
    if upper[:3] in (["CREATE", "EVENT", "TRIGGER"], ["ALTER", "EVENT", "TRIGGER"]):
        return True
    if upper[0] in ("COMMENT", "SECURITY") and "ON" in upper:
        at = upper.index("ON")
        return upper[at + 1:at + 3] == ["EVENT", "TRIGGER"]
    return False


def is_ownership(parts: Sequence[str]) -> bool:
    """Exactly `ALTER <kind> <name> OWNER TO <role>`: no literal, no dollar quote, no comma
    outside a signature's parentheses (the grammar has no room for anything else then)."""
    upper = [part.upper() for part in parts]
    if len(parts) < 5 or upper[0] != "ALTER" or upper[-3:-1] != ["OWNER", "TO"]:
        return False
    if not _is_name(parts[-1]):
        return False
    depth = 0
    for part in parts[1:-3]:
        if part.startswith(("'", "$", "E'")):
            return False
        depth += {"(": 1, ")": -1}.get(part, 0)
        if depth < 0 or (part == "," and depth == 0):
            return False
        if not (_is_name(part) or part in _NAME_TOKENS or part.isdigit()
                or set(part) <= _OPERATOR_CHARACTERS):
            return False
    return depth == 0


def _is_name(part: str) -> bool:
    return part == '"…"' or part.replace("_", "a").replace("$", "a").isalnum()


def _is_base_type(upper: Sequence[str]) -> bool:
    """CREATE TYPE name (INPUT = ..., OUTPUT = ...), or its shell `CREATE TYPE name`: a base
    type, superuser only."""
    if upper[:2] != ["CREATE", "TYPE"]:
        return False
    at = 2
    while at + 1 < len(upper) and upper[at + 1] == ".":
        at += 2
    return upper[at + 1:at + 2] in (["("], [])


def function_language(parts: Sequence[str]) -> str | None:
    """The LANGUAGE of CREATE [OR REPLACE] FUNCTION|PROCEDURE, lower case ('"' when
    quoted: treated as unknown), or None for other statements."""
    upper = [part.upper() for part in parts[:5]]
    kind = upper[3] if upper[1:3] == ["OR", "REPLACE"] else upper[1] if len(upper) > 1 else ""
    if upper[0] != "CREATE" or kind not in ("FUNCTION", "PROCEDURE"):
        return None
    depth = 0
    for index, part in enumerate(parts):
        depth += {"(": 1, ")": -1}.get(part, 0)
        if depth == 0 and part.upper() == "LANGUAGE" and index + 1 < len(parts):
            return parts[index + 1].lower()
    return "sql"  # a function without LANGUAGE is SQL (SQL-standard bodies)

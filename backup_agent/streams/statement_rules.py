"""Which statements pg_dump writes for one database, as rules on a statement's skeleton.

The skeleton is the statement's tokens: words as written, string literals as `'text'`
(`'…'` when long), quoted identifiers as `"…"`, dollar-quoted bodies as `$$`. The rules
follow what pg_dump (src/bin/pg_dump/pg_dump.c, pg_backup_archiver.c) emits for a plain
dump without --create, --clean or --inserts: session SETs (and SET/RESET SESSION
AUTHORIZATION around grants made by another grantor), `set_config('search_path')`,
CREATE/ALTER/COMMENT/SECURITY LABEL of objects inside a database, GRANT/REVOKE on them,
`COPY ... FROM stdin`, setval, the large-object calls, REFRESH MATERIALIZED VIEW and the
BEGIN/COMMIT around large objects. Anything about other databases, roles, tablespaces,
the server's configuration, or that runs code (DO, CALL, LOAD, SELECT of anything else,
COPY to or from a program or file) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# Settings pg_dump sets at the top of a dump (and per object, default_tablespace and
# default_table_access_method). Not search_path: pg_dump has written only
# `set_config('search_path', '', false)` since 10.3, and a search_path naming a schema the
# builder owns ahead of pg_catalog would resolve the admin's statements to its objects.
SESSION_SETTINGS = frozenset({
    "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
    "transaction_timeout", "client_encoding", "standard_conforming_strings",
    "check_function_bodies", "xmloption", "client_min_messages", "row_security",
    "default_tablespace", "default_table_access_method", "default_with_oids",
})
# pg_dump sets client_encoding to the database's encoding, always a server encoding: none
# of them lets an ASCII quote or backslash be the second byte of a character (client-only
# encodings such as SJIS or BIG5 do, and psql would split the stream differently).
SERVER_ENCODINGS = frozenset({
    "UTF8", "SQLASCII", "MULEINTERNAL", "EUCJP", "EUCCN", "EUCKR", "EUCTW", "EUCJIS2004",
    "LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5", "LATIN6", "LATIN7", "LATIN8", "LATIN9",
    "LATIN10", "WIN1250", "WIN1251", "WIN1252", "WIN1253", "WIN1254", "WIN1255", "WIN1256",
    "WIN1257", "WIN1258", "WIN866", "WIN874", "KOI8R", "KOI8U", "ISO88595", "ISO88596",
    "ISO88597", "ISO88598"})
GLOBAL_OBJECTS = frozenset({"DATABASE", "ROLE", "USER", "GROUP", "TABLESPACE", "PARAMETER",
                            "SYSTEM"})
CREATABLE = frozenset({
    "SCHEMA", "EXTENSION", "TYPE", "DOMAIN", "FUNCTION", "PROCEDURE", "AGGREGATE", "OPERATOR",
    "TABLE", "UNLOGGED", "SEQUENCE", "VIEW", "RECURSIVE", "MATERIALIZED", "INDEX", "UNIQUE",
    "TRIGGER", "CONSTRAINT", "EVENT", "POLICY", "PUBLICATION", "RULE", "STATISTICS", "TEXT",
    "COLLATION", "CONVERSION", "DEFAULT", "CAST", "FOREIGN", "SERVER", "ACCESS", "LANGUAGE",
    "TRUSTED", "PROCEDURAL", "TRANSFORM", "SUBSCRIPTION",
})
ALTERABLE = frozenset({
    "TABLE", "SCHEMA", "SEQUENCE", "VIEW", "MATERIALIZED", "INDEX", "FUNCTION", "PROCEDURE",
    "ROUTINE", "AGGREGATE", "TYPE", "DOMAIN", "OPERATOR", "TEXT", "COLLATION", "CONVERSION",
    "EXTENSION", "FOREIGN", "SERVER", "PUBLICATION", "SUBSCRIPTION", "EVENT", "LARGE",
    "DEFAULT", "STATISTICS", "LANGUAGE", "PROCEDURAL", "POLICY", "TRIGGER", "RULE",
})
_LITERAL = r"(?:E?'(?:[^']|'')*')"
_NUMBER = r"(?:- )?[0-9][0-9.]*"
_SELECTS = tuple(re.compile(pattern) for pattern in (
    r"SELECT pg_catalog \. set_config \( 'search_path' , '' , false \)",
    rf"SELECT pg_catalog \. setval \( {_LITERAL} , {_NUMBER} , (?:true|false) \)",
    rf"SELECT pg_catalog \. lo_create \( {_LITERAL} \)",
    rf"SELECT pg_catalog \. lo_open \( {_LITERAL} , {_NUMBER} \)",
    rf"SELECT pg_catalog \. lowrite \( {_NUMBER} , {_LITERAL} \)",
    rf"SELECT pg_catalog \. lo_close \( {_NUMBER} \)",
))
_NAME = r'(?:[A-Za-z\x80-\uffff_][\w$\x80-\uffff]*|"…")'
_COPY = re.compile(rf"COPY (?:ONLY )?(?P<schema>{_NAME}) \. {_NAME}"
                   rf"(?: \( {_NAME}(?: , {_NAME})* \))? FROM stdin")
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def describe(text: bytes) -> str:
    """The first words of a line, for an error message."""
    return text.split(b"\n", 1)[0][:40].decode("utf-8", "replace").strip()


def refusal(parts: Sequence[str]) -> str | None:
    """Return why pg_dump would never write this statement, or None if it would."""
    if not parts:
        return None
    rule = _RULES.get(parts[0].upper())
    if rule is None:
        return f"{parts[0].upper()} is not a statement pg_dump writes"
    return rule(parts, [part.upper() for part in parts])


def _set(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    if upper[1:3] == ["SESSION", "AUTHORIZATION"] and len(parts) == 4:
        return None  # around GRANTs whose grantor is not the owner (buildACLCommands)
    if len(parts) < 4 or parts[1].lower() not in SESSION_SETTINGS or upper[2] not in ("=", "TO"):
        return "a SET pg_dump does not write"
    value = " ".join(parts[3:]).strip("'").lower()
    if parts[1].lower() == "standard_conforming_strings" and value != "on":
        return "standard_conforming_strings must stay on"
    if parts[1].lower() == "client_encoding":
        literal = parts[3] if len(parts) == 4 else ""
        name = literal[1:-1].upper().replace("_", "").replace("-", "")
        if not (literal.startswith("'") and literal.endswith("'") and name in SERVER_ENCODINGS):
            return f"client encoding {' '.join(parts[3:])} is not a database encoding"
    return None


def _select(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    text = " ".join(parts)
    if any(pattern.fullmatch(text) for pattern in _SELECTS):
        return None
    return "a SELECT other than pg_dump's set_config, setval and large-object calls"


def _create(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    kind = upper[3] if upper[1:3] == ["OR", "REPLACE"] and len(upper) > 3 else \
        upper[1] if len(upper) > 1 else ""
    if kind == "USER" and len(upper) > 2 and upper[2] == "MAPPING":
        return None
    if kind not in CREATABLE:
        return f"CREATE {kind} is not something pg_dump creates inside a database"
    if kind == "SUBSCRIPTION" and not _sets_connect_false(upper):
        return "a subscription that would connect (pg_dump writes connect = false)"
    if kind in ("TABLE", "UNLOGGED") and _query_after_as(upper):
        return "CREATE TABLE ... AS runs a query (pg_dump writes tables, never CTAS)"
    return _program_option(upper)


def _sets_connect_false(upper: Sequence[str]) -> bool:
    """`connect = false` as tokens of the statement, not text inside a string."""
    return any(upper[index:index + 3] == ["CONNECT", "=", "FALSE"]
               for index in range(len(upper)))


def _query_after_as(upper: Sequence[str]) -> bool:
    queries = ("SELECT", "EXECUTE", "VALUES", "TABLE", "WITH")
    return any(word == "AS" and index + 1 < len(upper) and upper[index + 1] in queries
               for index, word in enumerate(upper))


def _program_option(upper: Sequence[str]) -> str | None:
    """file_fdw's `program 'command'` option runs a shell command whenever the table is
    read (a column named program is fine: no string follows its name)."""
    if any(word == "PROGRAM" and upper[index + 1:index + 2] and
           upper[index + 1].startswith(("'", "E'")) for index, word in enumerate(upper)):
        return "a `program` option (file_fdw runs it as a shell command)"
    return None


def _alter(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    kind = upper[1] if len(upper) > 1 else ""
    if kind == "USER" and len(upper) > 2 and upper[2] == "MAPPING":
        return None
    if kind not in ALTERABLE:
        return f"ALTER {kind} reaches outside the database being restored"
    if kind == "SUBSCRIPTION" and upper[-3:-1] != ["OWNER", "TO"]:
        return "ALTER SUBSCRIPTION other than OWNER TO"
    return _program_option(upper)


def _target(upper: Sequence[str]) -> str | None:
    """COMMENT ON X, SECURITY LABEL ... ON X, GRANT ... ON X: X must be inside the database."""
    if "ON" not in upper:
        return "a role membership or privilege without ON (pg_dump writes those for objects)"
    following = upper[upper.index("ON") + 1:upper.index("ON") + 2]
    if following and following[0] in GLOBAL_OBJECTS:
        return f"it is about a {following[0].lower()}, outside the database being restored"
    return None


def _copy(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    match = _COPY.fullmatch(" ".join(parts))
    if match is None:
        return "a COPY other than COPY schema.table ... FROM stdin"
    if match["schema"].lower() in SYSTEM_SCHEMAS or match["schema"].lower().startswith("pg_"):
        return "a COPY into the system catalogs"
    return None


def _refresh(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    return None if upper[1:3] == ["MATERIALIZED", "VIEW"] else "REFRESH other than a view"


def _reset(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    if upper == ["RESET", "SESSION", "AUTHORIZATION"]:
        return None
    return "a RESET pg_dump does not write"


def _alone(parts: Sequence[str], upper: Sequence[str]) -> str | None:
    return None if len(parts) == 1 else f"{upper[0]} with more after it"


_RULES: dict[str, Callable[[Sequence[str], Sequence[str]], str | None]] = {
    "SET": _set, "SELECT": _select, "CREATE": _create, "ALTER": _alter,
    "COMMENT": lambda parts, upper: _target(upper), "GRANT": lambda parts, upper: _target(upper),
    "REVOKE": lambda parts, upper: _target(upper),
    "SECURITY": lambda parts, upper: _target(upper) if upper[1:2] == ["LABEL"]
    else "SECURITY other than SECURITY LABEL",
    "COPY": _copy, "REFRESH": _refresh, "BEGIN": _alone, "COMMIT": _alone, "RESET": _reset,
}


def names_roles(parts: Sequence[str]) -> bool:
    """A privilege statement: GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, or the SET/RESET
    SESSION AUTHORIZATION pg_dump writes around a grant by another role."""
    upper = [part.upper() for part in parts[:3]]
    return upper[0] in ("GRANT", "REVOKE") or upper[:3] == ["ALTER", "DEFAULT", "PRIVILEGES"] \
        or (upper[0] in ("SET", "RESET") and upper[1:3] == ["SESSION", "AUTHORIZATION"])


def is_policy(parts: Sequence[str]) -> bool:
    """CREATE POLICY or COMMENT ON POLICY (a policy's roles need to exist)."""
    upper = [part.upper() for part in parts[:3]]
    return upper[:2] == ["CREATE", "POLICY"] or upper == ["COMMENT", "ON", "POLICY"]

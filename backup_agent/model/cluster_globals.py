"""What a database needs from its cluster, as a backup carries it: the globals file.

The server writes it as JSON (postgres/globals_sql.py); a restore reads it back through
`parse_globals`, which accepts exactly the shapes the server writes and nothing else. It is
data, never SQL: the statements a restore runs are built from these values by
postgres/globals_apply.py, every name quoted as an identifier and every value as a literal,
so a planted globals file can at most describe roles, never run a statement of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GLOBALS_FORMAT = 1
NAME_LIMIT_BYTES = 63
# What rolpassword holds: a SCRAM verifier or an MD5 hash, never a plain password.
PASSWORD_HASH = re.compile(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:"
                           r"[A-Za-z0-9+/=]+|md5[0-9a-f]{32}")
VALID_UNTIL = re.compile(r"-?infinity|\d{4,}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \+00 (AD|BC)")
SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.$]*")
ENCODING = re.compile(r"[A-Z0-9_]{2,20}")
DATABASE_PRIVILEGES = frozenset({"CONNECT", "CREATE", "TEMPORARY"})
LOCALE_PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}


class GlobalsError(ValueError):
    """The globals file is not what backup-agent writes."""


@dataclass(frozen=True)
class Role:
    name: str
    superuser: bool
    inherit: bool
    createrole: bool
    createdb: bool
    login: bool
    replication: bool
    bypassrls: bool
    connection_limit: int
    valid_until: str | None  # "YYYY-MM-DD HH:MM:SS.ffffff +00 AD|BC", "infinity", "-infinity"
    password: str | None  # a SCRAM or MD5 hash
    comment: str | None
    settings: tuple[str, ...]  # "name=value", as pg_db_role_setting keeps them


@dataclass(frozen=True)
class Membership:
    role: str
    member: str
    admin: bool
    inherit: bool | None  # None: the server predates PostgreSQL 16's per-grant options
    set: bool | None


@dataclass(frozen=True)
class Grant:
    grantee: str | None  # None: PUBLIC
    grantor: str
    privilege: str
    grantable: bool


@dataclass(frozen=True)
class DatabaseProperties:
    owner: str
    encoding: str
    collate: str
    ctype: str
    locale_provider: str  # "c", "i" or "b"
    locale: str | None  # the ICU or builtin locale
    icu_rules: str | None
    connection_limit: int
    acl: tuple[Grant, ...] | None  # None: the default privileges
    comment: str | None
    settings: tuple[str, ...]
    role_settings: tuple[tuple[str, tuple[str, ...]], ...]  # (role, settings)


@dataclass(frozen=True)
class ClusterGlobals:
    roles: tuple[Role, ...]
    memberships: tuple[Membership, ...]
    database: DatabaseProperties
    passwords_included: bool
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    bootstrap_superuser: str | None = None  # the old server's, which pg_dump names as owner

    def role_names(self) -> list[str]:
        return [role.name for role in self.roles]


def document(*, roles: Mapping[str, Any], database: Any, fingerprint: Any,
             passwords_included: bool) -> bytes:
    """The globals file's content, from the server's three JSON answers."""
    return json.dumps({"format": GLOBALS_FORMAT, "passwords_included": passwords_included,
                       "roles": roles["roles"], "memberships": roles["memberships"],
                       "bootstrap_superuser": roles["bootstrap_superuser"],
                       "database": database, "fingerprint": fingerprint},
                      ensure_ascii=False, sort_keys=True).encode()


# Reading back, strictly


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or "\0" in value \
            or len(value.encode()) > NAME_LIMIT_BYTES:
        raise GlobalsError(f"{what} is not a PostgreSQL name")
    return value


def _text(value: Any, what: str, *, limit: int = 4096) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "\0" in value or len(value) > limit:
        raise GlobalsError(f"{what} is not text")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise GlobalsError(f"{what} is not true or false")
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -1 <= value < 2**31:
        raise GlobalsError(f"{what} is not a connection limit")
    return value


def _settings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise GlobalsError(f"{what} is not a list of settings")
    for item in value:
        text = _text(item, what)
        if text is None or not SETTING_NAME.fullmatch(text.partition("=")[0]) \
                or "=" not in text:
            raise GlobalsError(f"{what} holds something other than name=value")
    return tuple(value)


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise GlobalsError(f"{what} is not a list of objects")
    return value


def _role(raw: dict[str, Any]) -> Role:
    name = _name(raw.get("name"), "a role's name")
    password = raw.get("password")
    if password is not None and (not isinstance(password, str)
                                 or not PASSWORD_HASH.fullmatch(password)):
        raise GlobalsError(f"role {name}'s password is not a SCRAM or MD5 hash")
    valid_until = _text(raw.get("valid_until"), f"role {name}'s VALID UNTIL", limit=40)
    if valid_until is not None and not VALID_UNTIL.fullmatch(valid_until):
        raise GlobalsError(f"role {name}'s VALID UNTIL is not a time")
    return Role(
        name=name, **{flag: _bool(raw.get(flag), f"role {name}'s {flag}") for flag in (
            "superuser", "inherit", "createrole", "createdb", "login", "replication",
            "bypassrls")},
        connection_limit=_int(raw.get("connection_limit"), f"role {name}'s connection limit"),
        valid_until=valid_until, password=password,
        comment=_text(raw.get("comment"), f"role {name}'s comment"),
        settings=_settings(raw.get("settings"), f"role {name}'s settings"))


def _membership(raw: dict[str, Any]) -> Membership:
    role, member = _name(raw.get("role"), "a membership"), _name(raw.get("member"),
                                                                   "a membership")
    options = {option: None if raw.get(option) is None else
               _bool(raw.get(option), f"{member}'s membership in {role}")
               for option in ("inherit", "set")}
    return Membership(role=role, member=member,
                      admin=_bool(raw.get("admin"), f"{member}'s membership in {role}"),
                      **options)


def _grant(raw: dict[str, Any]) -> Grant:
    privilege = raw.get("privilege")
    if privilege not in DATABASE_PRIVILEGES:
        raise GlobalsError("the database's privileges hold something other than CONNECT, "
                           "CREATE or TEMPORARY")
    grantee = None if raw.get("grantee") is None else _name(raw.get("grantee"), "a grantee")
    return Grant(grantee=grantee, grantor=_name(raw.get("grantor"), "a grantor"),
                 privilege=str(privilege),
                 grantable=_bool(raw.get("grantable"), "a grant option"))


def parse_database_properties(raw: Any) -> DatabaseProperties:
    if not isinstance(raw, dict):
        raise GlobalsError("the database's properties are missing")
    encoding = raw.get("encoding")
    if not isinstance(encoding, str) or not ENCODING.fullmatch(encoding):
        raise GlobalsError("the database's encoding is not an encoding name")
    provider = raw.get("locale_provider")
    if provider not in LOCALE_PROVIDERS:
        raise GlobalsError("the database's locale provider is not libc, icu or builtin")
    acl = raw.get("acl")
    role_settings = []
    for item in _objects(raw.get("role_settings") or [], "the per-role settings"):
        role = _name(item.get("role"), "a per-role setting's role")
        role_settings.append((role, _settings(item.get("settings"), f"{role}'s settings")))
    return DatabaseProperties(
        owner=_name(raw.get("owner"), "the database's owner"), encoding=encoding,
        collate=_text(raw.get("collate"), "LC_COLLATE", limit=256) or "",
        ctype=_text(raw.get("ctype"), "LC_CTYPE", limit=256) or "",
        locale_provider=str(provider), locale=_text(raw.get("locale"), "the locale",
                                                    limit=256),
        icu_rules=_text(raw.get("icu_rules"), "the ICU rules"),
        connection_limit=_int(raw.get("connection_limit"), "the connection limit"),
        acl=None if acl is None else tuple(_grant(item) for item in _objects(acl, "the ACL")),
        comment=_text(raw.get("comment"), "the database's comment", limit=1 << 20),
        settings=_settings(raw.get("settings"), "the database's settings"),
        role_settings=tuple(role_settings))


def parse_globals(content: bytes) -> ClusterGlobals:
    """Return the globals file's content; raise GlobalsError unless it is exactly ours."""
    try:
        raw = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise GlobalsError("it is not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != GLOBALS_FORMAT:
        raise GlobalsError(f"it is not a format-{GLOBALS_FORMAT} globals file")
    fingerprint = raw.get("fingerprint")
    return ClusterGlobals(
        roles=tuple(_role(item) for item in _objects(raw.get("roles"), "the roles")),
        memberships=tuple(_membership(item) for item in _objects(raw.get("memberships"),
                                                                 "the memberships")),
        database=parse_database_properties(raw.get("database")),
        passwords_included=_bool(raw.get("passwords_included"), "passwords_included"),
        fingerprint=fingerprint if isinstance(fingerprint, dict) else {},
        bootstrap_superuser=None if raw.get("bootstrap_superuser") is None
        else _name(raw.get("bootstrap_superuser"), "the bootstrap superuser"))

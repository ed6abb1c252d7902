"""Proof beyond row counts: the restored database against the catalog fingerprint the backup
recorded in its dump's own snapshot (postgres/globals_sql.py).

Compared: how many objects of each kind (tables, indexes, constraints, sequences, views,
functions, triggers, policies, large objects, grants, ...), every sequence's position, the
database's own properties (owner, encoding, locales, settings, comment, limit, privileges),
and that every role the restored database uses is one the backup carries (else a new server
could not restore it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from backup_agent.model.cluster_globals import (
    ClusterGlobals,
    DatabaseProperties,
    GlobalsError,
    parse_database_properties,
)
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres import globals_sql
from backup_agent.postgres.session import SqlSession


def observe(settings: PostgresSettings, database: str,
            server_major: int) -> tuple[dict[str, Any], DatabaseProperties, list[str]]:
    """The fingerprint, properties and used roles of `database` as it is now."""
    with SqlSession(settings, database) as session:
        fingerprint = session.json_query(globals_sql.fingerprint_sql())
        properties = session.json_query(globals_sql.database_sql(server_major))
        used = session.json_query(globals_sql.used_role_names_sql(server_major))
    try:
        database_properties = parse_database_properties(properties)
    except GlobalsError as error:  # our own server's answer: would be a bug here
        raise RuntimeError(f"unreadable properties of {database}: {error}") from None
    assert isinstance(fingerprint, dict) and isinstance(used, list)
    return fingerprint, database_properties, [str(name) for name in used]


def differences(cluster: ClusterGlobals, fingerprint: Mapping[str, Any],
                properties: DatabaseProperties, used_roles: list[str], *,
                compare_owners: bool, compare_role_settings: bool = True) -> list[str]:
    """What differs between the backup's record and the restored database, first first."""
    found = []
    recorded = cluster.fingerprint.get("counts") or {}
    restored = fingerprint.get("counts") or {}
    for kind in sorted(set(recorded) | set(restored)):
        if recorded.get(kind) != restored.get(kind):
            found.append(f"{kind}: {restored.get(kind)} restored, the backup's database had "
                         f"{recorded.get(kind)}")
    found += _sequences(cluster.fingerprint.get("sequences") or {},
                        fingerprint.get("sequences") or {})
    carried = set(cluster.role_names())
    found += [f"role {name}: the restored database uses it but the backup does not carry it "
              "(a new server could not restore this backup)"
              for name in used_roles if name not in carried]
    skipped = set() if compare_owners else {"owner", "acl"}
    if not compare_role_settings:  # unsigned: existing roles' settings are left out, listed
        skipped.add("role_settings")
    for item in fields(DatabaseProperties):
        if item.name in skipped:
            continue
        want, have = getattr(cluster.database, item.name), getattr(properties, item.name)
        if want != have:
            found.append(f"database {item.name.replace('_', ' ')}: {have!r} restored, the "
                         f"backup's database had {want!r}")
    return found


def _sequences(recorded: Mapping[str, Any], restored: Mapping[str, Any]) -> list[str]:
    """A sequence is not behind where the snapshot saw it. (Sequences are not transactional:
    pg_dump reads them a moment after the snapshot, so ahead is fine, behind is lost.)"""
    found = []
    for name in sorted(recorded):
        if name not in restored:
            found.append(f"sequence {name}: missing after restore")
            continue
        (want, step), (have, _) = recorded[name], restored[name]
        if want is None:
            continue
        behind = have is None or (have < want if step > 0 else have > want)
        if behind:
            found.append(f"sequence {name}: at {have} after restore, the backup's database "
                         f"was at {want}")
    return found

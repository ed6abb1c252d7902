"""Build a database the way the backup's cluster had it: roles first, then the database with
its recorded properties, then (after the dump is in) its settings and privileges.

Shared by `restore` and `verify --restore-test`. The globals file is proven before any of
it is used (streams/globals_file.py); a backup made before globals files existed is rebuilt
as before: a database like the current one, no roles created.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backup_agent.model.backup import BackupRef
from backup_agent.model.cluster_globals import ClusterGlobals, GlobalsError
from backup_agent.model.errors import ConfigurationError, RestoreError, VerificationError
from backup_agent.postgres.admin import DatabaseAdmin, DatabaseFacts, quote_identifier
from backup_agent.postgres.globals_statements import (
    SETTINGS_CONTEXT_SQL,
    create_database,
    database_privileges,
    database_settings,
)
from backup_agent.postgres.roles import create_missing_roles, drop_created_roles, existing_roles

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

NO_GLOBALS = ("{name} was made before backups carried their roles and database properties: "
              "only the dump is restored (roles must exist; the database's grants, settings "
              "and comment are not restored)")


GLOBALS_FILE = "its globals file (roles and database properties)"


def _read_globals(backup: BackupRef, identities: Sequence[Identity] | None, *,
                  checksum_only: bool = False) -> ClusterGlobals | None:
    """The backup's globals, proven (with `checksum_only`, its SHA-256 alone, as without
    the key); None for a backup made before globals files. Raises GlobalsError."""
    entry = (backup.manifest or {}).get("globals")
    if entry is None:
        return None
    expected = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(expected, str):
        raise GlobalsError("the manifest's entry for it has no SHA-256")
    if backup.globals_bytes is None:
        raise GlobalsError("it is missing")
    from backup_agent.streams.globals_file import check_sha256, prove

    if checksum_only:
        check_sha256(backup.globals_bytes, expected)
        return None
    return prove(backup.globals_bytes, expected_sha256=expected,
                 identities=identities if backup.encrypted else None)


def proven_globals(backup: BackupRef,
                   identities: Sequence[Identity] | None) -> ClusterGlobals | None:
    """The backup's globals, proven; None for a backup made before globals files.

    Raises VerificationError when the manifest records a globals file that is missing,
    altered or not ours: then nothing of the backup runs."""
    try:
        return _read_globals(backup, identities)
    except GlobalsError as error:
        raise VerificationError(f"refusing {backup.location}: {GLOBALS_FILE}: {error}; "
                                "nothing was restored and none of it ran (try an earlier "
                                "backup)") from None


def globals_problem(backup: BackupRef, identities: Sequence[Identity] | None, *,
                    checksum_only: bool) -> str | None:
    """What `verify` says is wrong with the backup's globals file, or None."""
    try:
        _read_globals(backup, identities, checksum_only=checksum_only)
    except GlobalsError as error:
        return f"{GLOBALS_FILE}: {error}"
    return None


@dataclass
class Rebuild:
    """One database being built from a backup, and what that did to the cluster."""

    admin: DatabaseAdmin
    cluster: ClusterGlobals | None
    server_major: int
    no_owner: bool
    for_test: bool = False  # a restore test: roles made NOLOGIN, dropped afterwards
    trusted: bool = True  # the globals file has a trusted signature (else roles powerless)
    created_roles: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _contexts: dict[str, str] | None = None
    _owner: str | None = None  # the database's owner, given in finish()
    _superuser: bool | None = None  # is the restoring user one (asked once)

    @property
    def contexts(self) -> dict[str, str]:
        """This server's settings and who may set them (pg_settings.context)."""
        if self._contexts is None:
            self._contexts = json.loads(self.admin.execute(SETTINGS_CONTEXT_SQL)[0])
        return self._contexts

    def check(self) -> None:
        """Refuse before anything is created when the dump's owners cannot exist here: pg_dump
        writes `OWNER TO` the old server's bootstrap superuser for what it owned; and giving
        objects to other roles needs a superuser (from PostgreSQL 16 a CREATEROLE user may
        not even SET ROLE to the roles it creates)."""
        if not self.no_owner and not self.restoring_superuser():
            user = self.admin.execute("SELECT CURRENT_USER;")[0]
            raise ConfigurationError(
                f"restoring the backup's owners needs a superuser, and {user} is not one: "
                f"restore as a superuser (POSTGRES_USER), or with --no-owner ({user} then "
                "owns everything); nothing was restored")
        if self.cluster is None or self.no_owner or self.cluster.bootstrap_superuser is None:
            return
        old = self.cluster.bootstrap_superuser
        if old not in existing_roles(self.admin):
            raise RestoreError(f"the backup's server had the superuser {old}, which owns "
                               "part of the dump, and this server has no such role: CREATE "
                               f"ROLE {quote_identifier(old)} SUPERUSER; first (or restore "
                               "with --no-owner); nothing was restored")

    def missing_roles(self) -> list[str]:
        """The roles `create` would make (for a dry run)."""
        if self.cluster is None or self.no_owner:
            return []
        existing = existing_roles(self.admin)
        return [name for name in self.cluster.role_names() if name not in existing]

    def create(self, name: str, model: DatabaseFacts | None) -> None:
        """Create the missing roles (unless --no-owner), then the empty database, owned by
        the restoring user until finish() (nothing the dump runs may own or alter it)."""
        if self.cluster is None:
            self.admin.create_like(name, model, keep_owner=False)
            self._owner = model.owner if model is not None and not self.no_owner else None
            return
        self.check()
        if not self.no_owner:
            outcome = create_missing_roles(self.admin, self.cluster, self.server_major,
                                           self.contexts, for_test=self.for_test,
                                           trusted=self.trusted)
            self.created_roles, self.notes = outcome.created, self.notes + outcome.notes
        owner: str | None = self.cluster.database.owner
        if self.no_owner or owner not in existing_roles(self.admin):
            owner = None
        self._owner = owner
        try:
            statement = create_database(name, self.cluster.database, owner=None,
                                        server_major=self.server_major)
        except ValueError as error:
            raise RestoreError(f"{error}: restore onto a newer PostgreSQL") from None
        self.admin.execute(statement)

    def finish(self, name: str) -> None:
        """Give the built database its owner and recorded settings, comment, limit and
        privileges; first undo any setting the dump's code may have given it."""
        database = quote_identifier(name)
        first = [f"ALTER DATABASE {database} RESET ALL;"]
        if self._owner is not None:
            first.append(f"ALTER DATABASE {database} OWNER TO {quote_identifier(self._owner)};")
        if self.cluster is None:
            self.admin.execute("BEGIN;\n" + "\n".join(first) + "\nCOMMIT;")
            return
        roles = set(existing_roles(self.admin))
        # An unsigned globals file changes no existing role, not even inside this database.
        changeable = roles if self.trusted else set(self.created_roles) & roles
        statements, left_out = database_settings(
            name, self.cluster.database, changeable, self.contexts,
            superuser_settings=self.trusted and self.restoring_superuser())
        if not self.no_owner:
            granted, not_granted = database_privileges(name, self.cluster.database, roles)
            statements, left_out = statements + granted, left_out + not_granted
        self.admin.execute("BEGIN;\n" + "\n".join(first + statements) + "\nCOMMIT;")
        self.notes += [f"left out {item}" for item in left_out]

    def restoring_superuser(self) -> bool:
        if self._superuser is None:
            self._superuser = self.admin.execute(
                "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER;"
            )[0] == "t"
        return self._superuser

    def undo(self) -> None:
        """Drop the roles this rebuild created (its database must be dropped first)."""
        kept = drop_created_roles(self.admin, self.created_roles)
        if kept:
            self.notes.append(f"kept role(s) {', '.join(kept)}, created by this restore: they "
                              "are in use now")
        self.created_roles = []

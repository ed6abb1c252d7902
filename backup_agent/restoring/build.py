"""The one pipeline `restore` and `verify --restore-test` share: build a database from a
proven dump, executed by the agent itself.

1. roles the backup needs (rebuild), then the empty database, owned by the restoring user;
2. a *builder* role for this build only: LOGIN with a random password, no attribute, no
   membership, CREATE in the new database's schemas (which the admin creates), nothing else;
3. the dump's statements, each as the executor routes it (restoring/executor.py), read
   again from the proven bytes, every block compared with its proof before use;
4. ANALYZE (the server analyzes each table as its owner: still the builder);
5. ownership as the dump gives it, what is left to the restoring user, the builder dropped;
6. event triggers, last, so none fires during the build;
7. the database's owner, settings, comment, limit and privileges (rebuild.finish).
Any failure drops the database and the builder; the caller drops the roles rebuild made.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from backup_agent.model.errors import (
    ConfigurationError,
    DatabaseError,
    RestoreError,
    VerificationError,
)
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.admin import quote_identifier, quote_literal
from backup_agent.postgres.roles import existing_roles
from backup_agent.restoring.executor import Deferred, Executor, Refused, Rules
from backup_agent.restoring.proof import ChangedError, Proof
from backup_agent.restoring.rebuild import Rebuild
from backup_agent.restoring.sessions import (
    BuildSession,
    Login,
    SessionChanged,
    StatementFailed,
    accepted_by,
    opened,
    run_accepting,
)
from backup_agent.streams.statements import StatementCheck
from backup_agent.streams.verify import verify_stream

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.postgres.admin import DatabaseAdmin, DatabaseFacts

log = logging.getLogger(__name__)
BUILDER_PREFIX = "backup_agent_builder_"
PERMISSION_DENIED = "42501"
BUILDER_LOGIN_WINDOW = timedelta(hours=1)
# Objects of this database the builder still owns once the dump's owners are given.
LEFTOVERS_SQL = (b"SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) "
                 b"FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_database b "
                 b"ON b.oid = d.dbid AND b.datname = pg_catalog.current_database() "
                 b"WHERE d.deptype = 'o' AND d.refclassid = 'pg_catalog.pg_authid'::regclass "
                 b"AND d.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s) "
                 # The server's own parts of an object (a range's constructors, its
                 # multirange) do not follow ALTER TYPE ... OWNER TO on every version.
                 b"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i WHERE i.classid = "
                 b"d.classid AND i.objid = d.objid AND i.objsubid = 0 AND i.deptype = 'i' "
                 b"AND i.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass)")

# Login event triggers (PostgreSQL 17+) fire as whoever connects, the agent included.
LOGIN_TRIGGERS_SQL = (b"SELECT pg_catalog.quote_ident(evtname) FROM pg_catalog.pg_event_trigger "
                      b"WHERE evtevent OPERATOR(pg_catalog.=) 'login'")


@dataclass
class Built:
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """What to build and how: one restore or restore test."""

    name: str  # the database to create
    target: str  # what the operator asked for (unchanged on failure)
    trusted: bool  # the backup carries a trusted signature
    no_owner: bool
    verbose: bool = False
    model: DatabaseFacts | None = None  # a backup without globals: like this database


def build(settings: PostgresSettings, rebuild: Rebuild, proof: Proof, request: Request, *,
          identities: Sequence[Identity] | None,
          progress: Callable[[int], None] | None = None) -> Built:
    """Build request.name from the proven dump; raise a BackupAgentError on failure, with the
    database and the builder gone (the roles rebuild created are the caller's to undo)."""
    admin = rebuild.admin
    rebuild.create(request.name, request.model)
    builder = f"{BUILDER_PREFIX}{secrets.token_hex(6)}"
    try:
        built, deferred = _execute(settings, rebuild, proof, request, builder, identities,
                                   progress)
        admin.analyze(settings, request.name)
        _hand_over(settings, request, builder, deferred, for_test=rebuild.for_test)
        rebuild.finish(request.name)
        return built
    except BaseException:
        try:
            admin.drop(request.name)
        except DatabaseError as error:  # say so, but the first failure is the one to show
            log.warning("could not drop %s after the failure: %s", request.name, error)
        raise
    finally:
        _drop_builder(admin, builder)


def _execute(settings: PostgresSettings, rebuild: Rebuild, proof: Proof, request: Request,
             builder: str, identities: Sequence[Identity] | None,
             progress: Callable[[int], None] | None) -> tuple[Built, Deferred]:
    try:
        return _run_statements(settings, rebuild, proof, request, builder, identities,
                               progress)
    except ChangedError as error:
        raise RestoreError(f"the backup changed between proving and restoring it ({error}); "
                           f"{request.name} was dropped: run again") from None
    except Refused as refused:
        raise _refusal(refused.line, str(refused)) from None
    except SessionChanged as changed:
        raise _refusal(changed.line, f"the {changed.session} session's {changed.name} changed "
                       f"from {changed.before!r} to {changed.after!r}, which only a statement "
                       "setting it may do (a function in the backup did)") from None
    except StatementFailed as failed:
        raise _statement_failed(failed, request) from None


def _run_statements(settings: PostgresSettings, rebuild: Rebuild, proof: Proof,
                    request: Request, builder: str, identities: Sequence[Identity] | None,
                    progress: Callable[[int], None] | None) -> tuple[Built, Deferred]:
    password = secrets.token_urlsafe(32)
    root = Login(settings.user, settings.password)
    with opened("admin", settings, request.name, root) as admin:
        _create_builder(admin, builder, password,
                        superuser=rebuild.restoring_superuser())
        with opened("builder", settings, request.name, Login(builder, password)) as session:
            _logged_in(admin, builder, rebuild.server_major)
            rules = Rules(trusted=request.trusted, no_owner=request.no_owner,
                          server_major=rebuild.server_major,
                          existing_roles=frozenset(existing_roles(rebuild.admin)))
            executor = Executor(session, admin, rules, verbose=request.verbose,
                                builder_role=quote_identifier(builder).encode())
            check = StatementCheck(executor)
            verdict = verify_stream(proof.replay(), expected_sha256=proof.verdict.sha256,
                                    identities=identities, progress=progress, check=check)
            if check.problem is None:
                executor.finish(check.statements)
            if verdict.sha256 != proof.verdict.sha256 or not verdict.content_good:
                raise RestoreError(f"the backup changed between proving and restoring it; "
                                   f"{request.name} was dropped: run again")
    return Built(notes=list(executor.notes)), executor.deferred


def _hand_over(settings: PostgresSettings, request: Request, builder: str,
               deferred: Deferred, *, for_test: bool) -> None:
    """Ownership as the dump gives it, the rest to the restoring user, event triggers last
    (for a restore test, its login triggers disabled: the test's own sessions come next)."""
    with opened("admin", settings, request.name, Login(settings.user, settings.password)) \
            as admin:
        try:
            for line, text in deferred.mappings + deferred.privileges + deferred.ownership:
                run_accepting(admin, text, line, accepted_by(text))
            builder_name = quote_identifier(builder)
            leftovers = admin.query_column(LEFTOVERS_SQL % quote_literal(builder).encode())
            if leftovers:
                raise _refusal(0, f"{len(leftovers)} object(s) that no statement of the dump "
                               "gives an owner were created while it was restored (by code in "
                               f"the backup): {', '.join(sorted(leftovers)[:5])}")
            # Only the server-made parts are left: the restoring user's, as with psql.
            admin.run(f"REASSIGN OWNED BY {builder_name} TO CURRENT_USER;".encode(), 0)
            admin.run(f"DROP OWNED BY {builder_name};".encode(), 0)
            for line, text in deferred.event_triggers:
                admin.run(text, line)
            for name in admin.query_column(LOGIN_TRIGGERS_SQL) if for_test else []:
                admin.run(f"ALTER EVENT TRIGGER {name} DISABLE;".encode(), 0)
        except StatementFailed as failed:
            raise _statement_failed(failed, request) from None
        except SessionChanged as changed:
            raise _refusal(changed.line, f"the admin session's {changed.name} changed") \
                from None


def _create_builder(admin: BuildSession, builder: str, password: str, *,
                    superuser: bool) -> None:
    """The builder: may log in (once) and create in the schemas of this database; has no
    attribute and no membership, so code running as it reaches nothing else."""
    create_login_role(admin, builder, password, BUILDER_LOGIN_WINDOW)
    role = quote_identifier(builder)
    admin.run(f"GRANT CREATE, USAGE ON SCHEMA public TO {role};".encode(), 0)
    if not superuser:
        # A CREATEROLE user (--no-owner) may hand objects to and take them from the builder
        # only as a member of it; membership gives the builder nothing.
        admin.run(f"GRANT {role} TO CURRENT_USER;".encode(), 0)


def _logged_in(admin: BuildSession, builder: str, server_major: int) -> None:
    """Its one login is done: any role may set its own password, and the backup's code run
    as it after its session (ANALYZE runs index expressions as the tables' owner) must not
    log in again (dblink, postgres_fdw). An expired role fails every password login, and
    only a CREATEROLE user may change VALID UNTIL. NOLOGIN too where parallel workers
    bypass it (PostgreSQL 17): before, they would fail in the builder's own session."""
    admin.run((f"ALTER ROLE {quote_identifier(builder)} PASSWORD NULL VALID UNTIL '-infinity'"
               f"{' NOLOGIN' if server_major >= 17 else ''};").encode(), 0)


def create_login_role(admin: BuildSession, name: str, password: str,
                      window: timedelta) -> None:
    """A role that may log in with `password` (sent as a SCRAM verifier, so neither reaches
    the server's log) for `window`, once at a time, with no attribute and no membership."""
    verifier = admin.encrypt_password(password, name)
    # It logs in once, at once; a role it cannot drop later can never log in again.
    until = (datetime.now(UTC) + window).isoformat()
    admin.run((f"CREATE ROLE {quote_identifier(name)} LOGIN NOSUPERUSER NOCREATEDB "
               f"NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 1 PASSWORD "
               f"{quote_literal(verifier)} VALID UNTIL {quote_literal(until)};").encode(), 0)


def _drop_builder(admin: DatabaseAdmin, builder: str) -> None:
    """Drop the builder; if it cannot go (it still owns something somewhere), make sure it
    can never log in and say so."""
    role = quote_identifier(builder)
    try:
        if not admin.execute(f"SELECT 1 FROM pg_catalog.pg_roles WHERE rolname "
                             f"OPERATOR(pg_catalog.=) {quote_literal(builder)};"):
            return  # never created (the restoring user may not create roles)
        admin.execute(f"DROP ROLE IF EXISTS {role};")
    except DatabaseError as error:
        with contextlib.suppress(DatabaseError):
            admin.execute(f"ALTER ROLE {role} NOLOGIN VALID UNTIL '-infinity';")
        log.warning("could not drop the restore's role %s (%s): it cannot log in; drop it "
                    "by hand (DROP OWNED BY %s; DROP ROLE %s; in each database)", builder,
                    error, role, role)


def _refusal(line: int, reason: str) -> VerificationError:
    return VerificationError(f"refusing the backup: line {line}: {reason}; nothing of it was "
                             "put in place (the database being built was dropped)")


def _statement_failed(failed: StatementFailed, request: Request) -> Exception:
    if failed.sqlstate == PERMISSION_DENIED and failed.session == "builder" \
            and not request.trusted:
        return _refusal(failed.line, f"{failed} (an unsigned backup may do only what a role "
                        "without any right outside the new database may: set "
                        "TRUSTED_SIGNING_KEYS to restore your own signed backups)")
    return RestoreError(f"a statement failed at line {failed.line} while restoring into "
                        f"{request.name} (as the {failed.session}): {failed}; "
                        f"{request.target} was not changed")


def reachable(settings: PostgresSettings) -> None:
    """Docker mode reaches the server over the network or a mounted socket directory."""
    if settings.container and not settings.host:
        raise ConfigurationError("restoring in docker mode needs POSTGRES_HOST (and "
                                 "POSTGRES_PORT): the container's published port or its "
                                 "mounted socket directory, which the agent connects to itself")

"""Execute a proven dump statement by statement, each in the session its route names.

The splitter (streams/statements.py) hands over each statement it judged, as the exact
bytes it judged; nothing is cut out of a statement or left between two. What `--no-owner`
or an older server leaves out is decided here, one whole statement at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from backup_agent.postgres.policies import policy_name, policy_roles
from backup_agent.restoring.guards import (
    ADMIN_FUNCTIONS_SQL,
    is_foreign_partition,
    is_user_mapping,
    problem_query,
)
from backup_agent.restoring.routes import (
    SAFE_LANGUAGES,
    Route,
    function_language,
    is_ownership,
    route,
)
from backup_agent.restoring.sessions import (
    AUTHORIZATION,
    BuildSession,
    StatementFailed,
    run_accepting,
)

log = logging.getLogger(__name__)

# Session settings pg_dump writes, by the major that introduced them: an older server is
# left without them (they only bound the restore's own session).
SETTINGS_SINCE = {"transaction_timeout": 17}
# Our own bounded wait stays: the dump's `SET lock_timeout = 0` would wait for ever.
KEPT_SETTINGS = frozenset({"lock_timeout"})
_WATCHED_BY_SETTING = {"client_encoding": ("client_encoding",),
                       "standard_conforming_strings": ("standard_conforming_strings",),
                       "search_path": ("search_path",)}
# The server's warnings that a GRANT or REVOKE did nothing: its role lacks the rights.
NOT_GRANTED = frozenset({"01007", "01006"})
PERMISSION_DENIED = "42501"


class Refused(Exception):
    """A statement the engine will not run here (the caller refuses the backup)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


@dataclass(frozen=True)
class Rules:
    """What this restore allows: decided before the first statement runs."""

    trusted: bool  # the backup carries a trusted signature
    no_owner: bool  # leave out ownership and privileges
    server_major: int
    existing_roles: frozenset[str]  # for --no-owner's policies


@dataclass
class Deferred:
    """What runs after every statement of the dump, once the builder's session is closed:
    privileges on what the builder does not own, ownership, then event triggers."""

    mappings: list[tuple[int, bytes]] = field(default_factory=list)  # user mappings (trusted)
    privileges: list[tuple[int, bytes]] = field(default_factory=list)  # trusted, not the builder's
    ownership: list[tuple[int, bytes]] = field(default_factory=list)
    event_triggers: list[tuple[int, bytes]] = field(default_factory=list)


class Executor:
    """A StatementSink: runs each statement as its route says, watching both sessions."""

    def __init__(self, builder: BuildSession, admin: BuildSession, rules: Rules, *,
                 builder_role: bytes, verbose: bool = False) -> None:
        self._builder_role = builder_role  # quoted
        self._builder = builder
        self._admin = admin
        self._rules = rules
        self._verbose = verbose
        self.deferred = Deferred()
        self.notes: list[str] = []
        self._as_grantor = False  # between SET and RESET SESSION AUTHORIZATION
        self._copy_line = 0
        self._left_out_policies: set[str] = set()
        self._event_triggers_left_out = 0
        self._languages: frozenset[str] = SAFE_LANGUAGES

    # StatementSink

    def statement(self, text: bytes, parts: list[str], line: int) -> None:
        if self._verbose:
            log.info("%s", text.decode("utf-8", "replace"))
        kind = route(parts, trusted_languages=self._trusted_languages(parts))
        if self._as_grantor and kind not in (Route.AUTHORIZATION, Route.PRIVILEGE):
            raise Refused(line, "only GRANT and REVOKE may run between SET SESSION "
                          "AUTHORIZATION and RESET SESSION AUTHORIZATION")
        handler = {
            Route.SETTING: self._setting, Route.AUTHORIZATION: self._authorization,
            Route.TRANSACTION: self._on_builder, Route.EVENT_TRIGGER: self._event_trigger,
            Route.OWNERSHIP: self._ownership, Route.ADMIN: self._on_admin,
            Route.TRUSTED_ADMIN: self._trusted_admin, Route.BUILDER: self._on_builder,
            Route.SCHEMA: self._schema, Route.SERVER: self._server,
            Route.PRIVILEGE: self._privilege,
        }[kind]
        handler(text, parts, line)

    def copy_data(self, data: bytes) -> None:
        self._builder.copy_write(data, self._copy_line)

    def copy_end(self) -> None:
        self._builder.copy_finish(self._copy_line)

    def finish(self, line: int) -> None:
        """The dump ended: nothing may be left open."""
        if self._as_grantor:
            raise Refused(line, "SET SESSION AUTHORIZATION without its RESET")
        if self._builder.transaction_open():
            raise Refused(line, "a transaction (BEGIN) that never commits")
        if self._event_triggers_left_out:
            self.notes.append(
                f"left out {self._event_triggers_left_out} event-trigger statement(s): an "
                "unsigned backup's event trigger would run as whoever changes the schema "
                "later (restore a signed backup to keep them)")

    # Routes

    def _setting(self, text: bytes, parts: list[str], line: int) -> None:
        name = "search_path" if parts[0].upper() == "SELECT" else parts[1].lower()
        if name in KEPT_SETTINGS:
            return
        since = SETTINGS_SINCE.get(name)
        if since is not None and self._rules.server_major < since:
            self.notes.append(f"left out `SET {name}`: the dump's pg_dump writes it, but "
                              f"PostgreSQL {self._rules.server_major} has no such setting "
                              f"(it came in {since})")
            return
        for session in (self._admin, self._builder):
            run_accepting(session, text, line, _WATCHED_BY_SETTING.get(name, ()))

    def _authorization(self, text: bytes, parts: list[str], line: int) -> None:
        if self._rules.no_owner:
            return  # it wraps grants, which --no-owner leaves out
        self._as_grantor = parts[0].upper() == "SET"
        if self._rules.trusted:  # after the grants it may rely on, which may come at the end
            self.deferred.privileges.append((line, text))
            return
        run_accepting(self._admin, text, line, AUTHORIZATION)

    def _event_trigger(self, text: bytes, parts: list[str], line: int) -> None:
        if not self._rules.trusted:
            self._event_triggers_left_out += 1
            return
        if self._rules.no_owner and is_ownership(parts):
            text = to_restoring_user(text)
        self.deferred.event_triggers.append((line, text))

    def _ownership(self, text: bytes, parts: list[str], line: int) -> None:
        self.deferred.ownership.append((line, to_restoring_user(text) if self._rules.no_owner
                                        else text))

    def _privilege(self, text: bytes, parts: list[str], line: int) -> None:
        """GRANT and REVOKE run as the builder, which owns what the dump creates: a grant on
        anything else (pg_catalog's functions, an extension's) grants nothing there. From a
        trusted backup those are given by the admin once the builder is gone; from an
        unsigned one they are left out (they would outlive the restore)."""
        if self._rules.no_owner:
            return
        if self._as_grantor:  # pg_dump's SET SESSION AUTHORIZATION grantor; GRANT ...
            if self._rules.trusted:
                self.deferred.privileges.append((line, text))
            else:
                self._admin.run(text, line)
            return
        self._builder.notices.clear()
        try:
            self._builder.run(text, line)
        except StatementFailed as failed:  # it may not even see the object
            if failed.sqlstate != PERMISSION_DENIED:
                raise
        else:
            if not set(self._builder.notices) & NOT_GRANTED:
                return
        if self._rules.trusted:
            self.deferred.privileges.append((line, text))
        else:
            self.notes.append(f"left out line {line}, {' '.join(parts[:6])} …: an unsigned "
                              "backup may grant and revoke only on what it creates")

    def _on_admin(self, text: bytes, parts: list[str], line: int) -> None:
        upper = [part.upper() for part in parts[:3]]
        if upper == ["ALTER", "DEFAULT", "PRIVILEGES"] and not self._rules.trusted:
            self.notes.append(f"left out line {line}, ALTER DEFAULT PRIVILEGES: an unsigned "
                              "backup sets no default privileges")
            return
        if self._rules.no_owner and upper == ["ALTER", "DEFAULT", "PRIVILEGES"]:
            return
        if upper == ["COMMENT", "ON", "POLICY"] and \
                policy_key(text, b"COMMENT ON POLICY ") in self._left_out_policies:
            return
        self._admin.run(text, line)

    def _schema(self, text: bytes, parts: list[str], line: int) -> None:
        """The admin creates schemas (the builder never gets a right on the database itself)
        and gives each to the builder until the dump gives it its owner."""
        self._admin.run(text, line)
        name = text[len(b"CREATE SCHEMA "):].rstrip(b";").strip()
        self._admin.run(b"ALTER SCHEMA " + name + b" OWNER TO " + self._builder_role + b";",
                        line)

    def _server(self, text: bytes, parts: list[str], line: int) -> None:
        """The admin creates foreign servers (a wrapper's USAGE is granted only at the end);
        the builder may use them for the foreign tables it creates."""
        self._admin.run(text, line)
        for server in self._admin.query_column(
                b"SELECT pg_catalog.quote_ident(srvname) FROM pg_catalog.pg_foreign_server"):
            self._admin.run(f"GRANT USAGE ON FOREIGN SERVER {server} TO ".encode()
                            + self._builder_role + b";", line)

    def _trusted_admin(self, text: bytes, parts: list[str], line: int) -> None:
        # Unsigned: the builder tries, and the server refuses what needs a superuser.
        if not self._rules.trusted:
            self._builder.run(text, line)
            return
        if is_user_mapping(parts):  # no connection of the build may use it (guards.py)
            self.deferred.mappings.append((line, text))
            return
        if is_foreign_partition(parts):
            self._foreign_partition(text, line)
            return
        self._admin.run(text, line)
        found = problem_query(parts)
        made = self._admin.query_column(found[0], line) if found else []
        if found and made:
            raise Refused(line, found[1].format(found=", ".join(made[:3])))
        # A function the admin had to create (C, an untrusted language, LEAKPROOF) is the
        # builder's until the dump gives it its owner: the builder's code may call it, and
        # a SECURITY DEFINER function must never run as the restoring superuser meanwhile.
        for function in self._admin.query_column(ADMIN_FUNCTIONS_SQL):
            self._admin.run(f"ALTER ROUTINE {function} OWNER TO ".encode()
                            + self._builder_role + b";", line)

    def _foreign_partition(self, text: bytes, line: int) -> None:
        """The builder owns the parent and may use every server: it creates the partition
        (its bound is evaluated then); one with options only a superuser may set is refused."""
        try:
            self._builder.run(text, line)
        except StatementFailed as failed:
            if failed.sqlstate != PERMISSION_DENIED:
                raise
            raise Refused(line, f"a foreign partition only a superuser may create ({failed}):"
                          " its bound and its parent's default partition would be evaluated "
                          "as the restoring superuser") from None

    def _on_builder(self, text: bytes, parts: list[str], line: int) -> None:
        if self._rules.no_owner and [part.upper() for part in parts[:2]] == ["CREATE",
                                                                             "POLICY"]:
            key, missing = policy_roles(text, self._rules.existing_roles)
            if missing:
                self._left_out_policies.add(key)
                self.notes.append(
                    f"left out policy {key}: it names role(s) {', '.join(missing)}, which "
                    "this server lacks (--no-owner); row-level security stays on, so those "
                    "rows are hidden from all but the owner until you recreate it")
                return
        if parts[0].upper() == "COPY":
            self._copy_line = line
            self._builder.watch(line)
            self._builder.copy_start(text, line)
            return
        self._builder.run(text, line)

    def _trusted_languages(self, parts: list[str]) -> frozenset[str]:
        """Languages anyone may use, looked up again when a function names a new one."""
        language = function_language(parts)
        if language is not None and language not in self._languages:
            found = self._admin.query_column(
                b"SELECT lanname FROM pg_catalog.pg_language WHERE lanpltrusted")
            self._languages = SAFE_LANGUAGES | frozenset(found)
        return self._languages


def policy_key(text: bytes, prefix: bytes) -> str | None:
    """`name on table` of a CREATE POLICY / COMMENT ON POLICY statement."""
    return policy_name(text.decode("utf-8", "replace"), prefix.decode())


def to_restoring_user(text: bytes) -> bytes:
    """`ALTER … OWNER TO role;` as `ALTER … OWNER TO CURRENT_USER;` (--no-owner): every
    object the dump creates still gets an owner, so none is left to the builder. (A role
    name holding " OWNER TO " makes this a syntax error, never another statement.)"""
    at = text.rfind(b" OWNER TO ")
    return text[:at] + b" OWNER TO CURRENT_USER;"

"""Turn what psql, pg_dump and docker print on failure into one line with a fix."""

from __future__ import annotations

from backup_agent.model.durations import human_duration
from backup_agent.model.errors import (
    BackupAgentError,
    ConfigurationError,
    DatabaseError,
    ToolMissingError,
)
from backup_agent.model.settings import PostgresSettings


def describe_server(settings: PostgresSettings) -> str:
    if settings.container:
        return f"container {settings.container}"
    host = settings.host or "the local socket"
    return f"{host}:{settings.port}" if settings.port else host


def last_meaningful_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    chosen = (error_lines or lines or ["no error output"])[-1]
    return chosen[:300]


class LockTimeoutError(DatabaseError):
    """A lock wait ran out (LOCK_WAIT_TIMEOUT); `postgres.locks` names who holds the lock."""


def is_lock_timeout(text: str) -> bool:
    """pg_dump says "statement timeout" about its LOCK TABLE; a session says "lock timeout"."""
    text = text.lower()
    return "due to lock timeout" in text or ("due to statement timeout" in text
                                             and "lock table" in text)


def diagnose(stderr: str, settings: PostgresSettings, *, program: str) -> BackupAgentError:
    """Return the error that best explains a failed PostgreSQL client run."""
    text = stderr.lower()
    server = describe_server(settings)
    if "no such container" in text:
        return ConfigurationError(f"docker container {settings.container!r} does not exist: "
                                  "check POSTGRES_CONTAINER against `docker ps`")
    if "executable file not found" in text or (
            settings.container and "exec:" in text and "not found" in text):
        return ToolMissingError(f"{program} not found inside container {settings.container}: "
                                "use the database's own image, or unset POSTGRES_CONTAINER "
                                "and set PG_BINDIR")
    if "cannot connect to the docker daemon" in text or "permission denied while trying to "\
            "connect to the docker" in text:
        return ToolMissingError("cannot talk to the docker daemon: run as a user in the "
                                "docker group, or check that docker is running")
    if "password authentication failed" in text:
        return DatabaseError(f"PostgreSQL at {server} rejected the password for user "
                             f"{settings.user!r}: check POSTGRES_PASSWORD (env or --env-file)")
    if "no password supplied" in text or "fe_sendauth" in text:
        return DatabaseError(f"PostgreSQL at {server} requires a password for user "
                             f"{settings.user!r}: set POSTGRES_PASSWORD (env or --env-file)")
    if "does not exist" in text and "database" in text:
        return DatabaseError(f"database {settings.database!r} does not exist at {server}: "
                             "check POSTGRES_DB (`psql -l` lists the databases)")
    if "role" in text and "does not exist" in text:
        return DatabaseError(f"role {settings.user!r} does not exist at {server}: "
                             "check POSTGRES_USER")
    if "server version mismatch" in text:
        return ToolMissingError(f"{program} is older than the server at {server}: "
                                "set PG_BINDIR to a client of the server's major version or "
                                "newer, or set POSTGRES_CONTAINER")
    if "timeout expired" in text:
        return DatabaseError(f"PostgreSQL at {server} did not answer within "
                             f"{settings.connect_timeout_seconds}s (PGCONNECT_TIMEOUT): check "
                             "that the server is running and POSTGRES_HOST/POSTGRES_PORT point "
                             "at it; raise PGCONNECT_TIMEOUT for a slow network")
    if is_lock_timeout(text):
        waited = f"{program} gave up waiting {human_duration(settings.lock_wait)} " \
                 "(LOCK_WAIT_TIMEOUT) for a table lock"
        return LockTimeoutError(f"{waited} another session holds: let it finish, or raise "
                                "LOCK_WAIT_TIMEOUT", details={"waited": waited})
    unreachable = ("connection refused", "could not connect", "could not translate host",
                   "timeout expired", "no route to host", "network is unreachable")
    if any(phrase in text for phrase in unreachable):
        return DatabaseError(f"cannot reach PostgreSQL at {server}: check that the server "
                             "is running and POSTGRES_HOST/POSTGRES_PORT "
                             "(or POSTGRES_CONTAINER)")
    return DatabaseError(f"{program} failed against {server}: {last_meaningful_line(stderr)}")

"""The PostgreSQL client programs' versions: can this pg_dump dump, can this psql restore?"""

from __future__ import annotations

from backup_agent import execute
from backup_agent.model.errors import ToolMissingError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import (
    make_environment,
    make_version_command,
    parse_client_version,
)
from backup_agent.postgres.diagnosis import describe_server, diagnose
from backup_agent.postgres.session import ServerFacts

# pg_dump 17.6 (and the same-day minor releases of 13-16) write `\restrict` lines into
# plain dumps; a psql older than these rejects them.
RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}


def understands_restrict(major: int, minor: int) -> bool:
    return major >= 18 or (major in RESTRICT_SINCE and minor >= RESTRICT_SINCE[major])


def parse_version(text: str) -> tuple[int, int] | None:
    parts = text.split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return int(parts[0]), int(parts[1])
    return None


def client_version(settings: PostgresSettings, program: str) -> tuple[str, int]:
    """Return (version text, major) of a client program; raise if it cannot run."""
    completed = execute.run(make_version_command(settings, program),
                            environment=make_environment(settings))
    if completed.returncode != 0:
        raise diagnose(completed.stderr or completed.stdout, settings, program=program)
    try:
        major, minor = parse_client_version(completed.stdout)
    except ValueError:
        raise ToolMissingError(f"cannot tell the version of {program} from "
                               f"{completed.stdout.strip()!r}: set PG_BINDIR to a standard "
                               "PostgreSQL client") from None
    return f"{major}.{minor}", major


def check_client_not_older(settings: PostgresSettings, program: str,
                           server: ServerFacts) -> str:
    """Return the client's version; raise ToolMissingError if it is older than the server."""
    version, major = client_version(settings, program)
    if major < server.major:
        raise ToolMissingError(
            f"{program} {version} is older than the PostgreSQL {server.version} server at "
            f"{describe_server(settings)}: set PG_BINDIR to a {server.major}.x client, or set "
            "POSTGRES_CONTAINER to use the one inside the database container")
    return version


def psql_understands_restrict(settings: PostgresSettings,
                              pg_dump_version: str | None = None) -> bool:
    """True when this psql has \\restrict, so a feed can lock out meta-commands.

    Raise ToolMissingError up front when the dump (by `pg_dump_version`) carries
    `\\restrict` lines this psql cannot read.
    """
    version_text, _major = client_version(settings, "psql")
    psql_version = parse_version(version_text)
    understood = psql_version is not None and understands_restrict(*psql_version)
    dump_version = parse_version(pg_dump_version) if pg_dump_version else None
    if dump_version is not None and understands_restrict(*dump_version) and not understood \
            and psql_version is not None:
        raise ToolMissingError(
            f"this backup was made by pg_dump {pg_dump_version}, whose plain dumps contain "
            f"\\restrict lines that psql {version_text} rejects: use psql 17.6+/18 (PG_BINDIR)"
            ", or POSTGRES_CONTAINER with a current image")
    return understood

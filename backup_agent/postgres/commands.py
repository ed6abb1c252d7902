"""PostgreSQL client commands as data: pure functions, tested by equality.

Nothing here runs a process (that is `backup_agent.execute`). The password never appears
in a command: it travels as PGPASSWORD in the environment, and in docker mode as a bare
`-e PGPASSWORD`, which tells docker to copy the value from its own environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from backup_agent.model.settings import PostgresSettings


def client_program(settings: PostgresSettings, program: str) -> list[str]:
    """Return the argv prefix that runs a PostgreSQL client program (pg_dump, psql...)."""
    if settings.container:
        environment = ["-e", "PGPASSWORD"] if settings.password else []
        return ["docker", "exec", "-i", *environment, "-e", "PGCONNECT_TIMEOUT",
                "-e", "PGOPTIONS", settings.container, program]
    if settings.bin_directory:
        return [str(settings.bin_directory / program)]
    return [program]


def connection_arguments(settings: PostgresSettings, database: str) -> list[str]:
    """Return host/port/user/database arguments; --no-password so nothing ever prompts."""
    arguments = ["--no-password"]
    if settings.host:
        arguments += ["--host", settings.host]
    if settings.port:
        arguments += ["--port", str(settings.port)]
    return [*arguments, "--username", settings.user, "--dbname", database]


def make_version_command(settings: PostgresSettings, program: str) -> list[str]:
    return [*client_program(settings, program), "--version"]


def lock_wait_milliseconds(settings: PostgresSettings) -> int:
    return max(1, round(settings.lock_wait.total_seconds() * 1000))


def make_dump_command(settings: PostgresSettings, *, snapshot: str | None) -> list[str]:
    """Return the pg_dump command: plain SQL on stdout, so `gunzip -c | psql` restores it.

    pg_dump locks every table it dumps first; --lock-wait-timeout bounds that wait.
    """
    command = [*client_program(settings, "pg_dump"),
               *connection_arguments(settings, settings.database), "--format=plain",
               f"--lock-wait-timeout={lock_wait_milliseconds(settings)}"]
    if snapshot:
        command.append(f"--snapshot={snapshot}")
    return command


def make_psql_command(settings: PostgresSettings, database: str) -> list[str]:
    """Return a quiet, unaligned, tuples-only psql that stops at the first error."""
    return [*client_program(settings, "psql"), "-X", "--quiet", "--no-align", "--tuples-only",
            "--set", "ON_ERROR_STOP=1", *connection_arguments(settings, database)]


# What a PostgreSQL client needs from our environment: never AWS_*, AGE_IDENTITY,
# NOTIFY_URL, signing keys or anything else the agent holds. PG*: libpq's own settings
# (PGSSLMODE, PGCONNECT_TIMEOUT, ...); DOCKER_*: the docker client's, in docker mode.
PASSED_VARIABLES = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER",
                              "LOGNAME", "TERM"})
PASSED_PREFIXES = ("LC_", "PG")
STANDARD_STRINGS = "-c standard_conforming_strings=on"


def child_environment(base: Mapping[str, str], *, docker: bool) -> dict[str, str]:
    """Return the part of `base` a client program (or docker) may see."""
    prefixes = (*PASSED_PREFIXES, "DOCKER_") if docker else PASSED_PREFIXES
    return {name: value for name, value in base.items()
            if name in PASSED_VARIABLES or name.startswith(prefixes)}


def make_environment(settings: PostgresSettings,
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a client's minimal environment: PGPASSWORD when one is set, and the connect
    timeout (libpq's PGCONNECT_TIMEOUT), so no connection waits for ever."""
    environment = child_environment(os.environ if base is None else base,
                                    docker=settings.container is not None)
    environment.pop("PGPASSWORD", None)
    if settings.password:
        environment["PGPASSWORD"] = settings.password
    environment["PGCONNECT_TIMEOUT"] = str(settings.connect_timeout_seconds)
    # Every session of ours reads and writes strings one way, whatever a database's or a
    # role's own default: a dump made with it off holds E'' strings and SET ... = off, which
    # no restore of ours accepts.
    environment["PGOPTIONS"] = (f"{environment.get('PGOPTIONS', '')} "
                                f"{STANDARD_STRINGS} {settings.options}").strip()
    return environment


def parse_client_version(output: str) -> tuple[int, int]:
    """Return (major, minor) from `pg_dump (PostgreSQL) 18.1` style output."""
    for word in output.split():
        head = word.split("beta")[0].split("rc")[0].split("devel")[0]
        parts = head.split(".")
        if parts[0].isdigit():
            minor = parts[1] if len(parts) > 1 and parts[1].isdigit() else "0"
            return int(parts[0]), int(minor)
    raise ValueError(f"no version number in {output.strip()!r}")

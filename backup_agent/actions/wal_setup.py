"""`backup-agent wal setup [--yes]`: say every server change the WAL stream needs; make them.

Without --yes nothing changes: each step is printed, done or to do, with its SQL. With
--yes the SQL runs in order over the agent's connection (as POSTGRES_USER: a superuser, or
a role allowed each change); what needs a human (a pg_hba.conf line, a restart) is printed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup_agent import execute
from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import Settings
from backup_agent.model.wal_setup import SetupStep
from backup_agent.postgres.commands import child_environment
from backup_agent.postgres.session import SqlSession
from backup_agent.postgres.wal_setup import ServerSetup, client_network, inspect, plan
from backup_agent.wal.service import (
    ContainerNetwork,
    Sidecar,
    make_networks_command,
    parse_networks,
    sidecar_compose,
    systemd_unit,
)

DEFAULT_ENV_FILE = Path("/opt/dorami/.env.production")  # run-agent.sh's, too

@dataclass
class SetupResult:
    role: str
    slot: str
    steps: list[SetupStep]
    applied: list[str] = field(default_factory=list)  # the SQL that ran
    service: str = ""  # a systemd unit, or in docker mode the sidecar's compose file
    sidecar: bool = False
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "slot": self.slot, "applied": self.applied,
                "service": self.service, "sidecar": self.sidecar,
                "steps": [{"what": step.what, "needed": step.needed, "sql": list(step.sql),
                           "hint": step.hint} for step in self.steps]}


def run_wal_setup(settings: Settings, *, role: str | None, slot_keep: str, apply: bool,
                  env_file: Path | None = None) -> SetupResult:
    """Return the plan (applied with `apply`) and the stream's service (a systemd unit; in
    docker mode a sidecar); raise DatabaseError if a change is refused."""
    role = role or settings.postgres.user
    slot = settings.wal.slot
    container = settings.postgres.container
    with SqlSession(settings.postgres, settings.postgres.database) as session:
        server = inspect(session, role, slot)
        if not server.role_exists:
            raise DatabaseError(f"role {role!r} does not exist: create the agent's role "
                                "first, or pass --for-role")
        network = _network(container) if container else None
        steps = (plan(server, role, slot, slot_keep, network.subnet, settings.postgres.database,
                      receiver=f"the sidecar on {network.name or 'the default bridge'} (in "
                               f"{container}'s own pg_hba.conf)")
                 if network else plan(server, role, slot, slot_keep, client_network(session),
                                      settings.postgres.database))
        result = SetupResult(role=role, slot=slot, steps=steps,
                             service=_service(settings, server, network,
                                              env_file or DEFAULT_ENV_FILE),
                             sidecar=network is not None)
        for step in steps:
            if not (apply and step.needed and step.sql):
                continue
            for statement in step.sql:
                try:
                    session.query(statement)
                except DatabaseError as error:
                    raise DatabaseError(
                        f"the server refused {statement!r} ({error}): run `backup-agent wal "
                        "setup --yes` as a superuser (--user), or have one run it") from None
                result.applied.append(statement)
    result.warnings = [f"needs a human: {step.what}: {step.hint}" for step in steps
                       if step.human]
    return result


def _network(container: str) -> ContainerNetwork:
    completed = execute.run(make_networks_command(container),
                            environment=child_environment(os.environ, docker=True))
    if completed.returncode != 0:
        raise DatabaseError(f"cannot inspect container {container} "
                            f"({completed.stderr.strip()}): check POSTGRES_CONTAINER")
    return parse_networks(completed.stdout, container)


def _service(settings: Settings, server: ServerSetup, network: ContainerNetwork | None,
             env_file: Path) -> str:
    """Return how to run `wal stream` for good, as the user who owns the spool (or us)."""
    spool = settings.wal.spool_directory
    owner = spool.stat() if spool.is_dir() else None
    uid, gid = (owner.st_uid, owner.st_gid) if owner else (os.geteuid(), os.getegid())
    prefix = Path(sys.prefix)  # the agent's own virtualenv (the install's PREFIX)
    if network is None:
        agent = prefix / "bin" / "backup-agent"
        return systemd_unit(agent=agent if agent.exists() else Path(
                                shutil.which("backup-agent") or "/usr/local/bin/backup-agent"),
                            user=pwd.getpwuid(uid).pw_name, env_file=env_file,
                            signing_key=settings.signing_key_file)
    return sidecar_compose(Sidecar(
        container=settings.postgres.container or "", network=network, major=server.major,
        port=server.port, context=prefix / "wal-stream", env_file=env_file, spool=spool,
        signing_key=settings.signing_key_file, user=f"{uid}:{gid}"))

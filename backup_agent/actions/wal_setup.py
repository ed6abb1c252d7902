"""`backup-agent wal setup [--yes]`: say every server change the WAL stream needs; make them.

Without --yes nothing changes: each step is printed, done or to do, with its SQL. With
--yes the SQL runs in order over the agent's connection (as POSTGRES_USER: a superuser, or
a role allowed each change); what needs a human (a pg_hba.conf line, a restart) is printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import Settings
from backup_agent.model.wal_setup import SetupStep
from backup_agent.postgres.session import SqlSession
from backup_agent.postgres.wal_setup import client_network, inspect, plan

SERVICE = """[Unit]
Description=backup-agent WAL stream (point-in-time recovery)
After=network-online.target

[Service]
User={user}
ExecStart={agent} wal stream --env-file {env_file}
Restart=always
RestartSec=10
# SIGTERM stops the stream cleanly (exit 130); pg_receivewal dies with it.
KillSignal=SIGTERM
SuccessExitStatus=130
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""


@dataclass
class SetupResult:
    role: str
    slot: str
    steps: list[SetupStep]
    applied: list[str] = field(default_factory=list)  # the SQL that ran
    service: str = ""
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "slot": self.slot, "applied": self.applied,
                "service": self.service,
                "steps": [{"what": step.what, "needed": step.needed, "sql": list(step.sql),
                           "hint": step.hint} for step in self.steps]}


def run_wal_setup(settings: Settings, *, role: str | None, slot_keep: str,
                  apply: bool) -> SetupResult:
    """Return the plan (applied with `apply`); raise DatabaseError if a change is refused."""
    role = role or settings.postgres.user
    slot = settings.wal.slot
    with SqlSession(settings.postgres, settings.postgres.database) as session:
        server = inspect(session, role, slot)
        if not server.role_exists:
            raise DatabaseError(f"role {role!r} does not exist: create the agent's role "
                                "first, or pass --for-role")
        steps = plan(server, role, slot, slot_keep, client_network(session),
                     settings.postgres.database)
        result = SetupResult(role=role, slot=slot, steps=steps, service=SERVICE.format(
            user="backup", agent="/usr/local/bin/backup-agent",
            env_file="/opt/dorami/.env.production"))
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

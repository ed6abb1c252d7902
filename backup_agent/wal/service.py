"""How `wal stream` runs for good: a systemd unit on a host, a restart-always sidecar beside
a server in Docker. Both as text, made from facts the action gathers (tested by equality).

The sidecar is built from the server's own image (`postgres:<major>`, so its pg_receivewal
is the server's version) with the agent installed in it from the wheel and lock that
`install-agent.sh --with-wal-stream` leaves in its build context. It runs the stream in
host mode (`wal stream` never runs pg_receivewal through `docker exec`): POSTGRES_CONTAINER
emptied, POSTGRES_HOST the server container's name on its network (its address on the
default bridge, which has no names), POSTGRES_PORT the port the server listens on inside
it. WAL_SPOOL_DIR is the same directory on the host, so `status` and `doctor` there read
the stream's state.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from backup_agent.model.errors import ConfigurationError

SIDECAR = "backup-agent-wal"
SIDECAR_AGENT = "/opt/backup-agent"  # the agent's virtualenv inside the sidecar's image
DEFAULT_NETWORKS = ("bridge", "host", "none")  # Docker's own: no container names on them


def systemd_unit(*, agent: Path, user: str, env_file: Path, signing_key: Path | None) -> str:
    """Return the unit that runs `wal stream` on this host (backup-agent-wal.service)."""
    key = f"Environment=SIGNING_KEY_FILE={signing_key}\n" if signing_key else ""
    return f"""[Unit]
Description=backup-agent WAL stream (point-in-time recovery)
Wants=network-online.target
After=network-online.target

[Service]
User={user}
ExecStart={agent} wal stream --env-file {env_file}
{key}Restart=always
RestartSec=10
# SIGTERM stops the stream cleanly (exit 130); pg_receivewal dies with it.
KillSignal=SIGTERM
SuccessExitStatus=130
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class ContainerNetwork:
    """Where a sidecar meets the server container."""

    name: str | None  # a network of the user's it joins (None: Docker's default bridge)
    host: str  # how it names the server there: the container's name, or its address
    subnet: str  # what it connects from, for the pg_hba.conf line


def make_networks_command(container: str) -> list[str]:
    return ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", container]


def parse_networks(text: str, container: str) -> ContainerNetwork:
    """Read `docker inspect`'s networks of `container`: the first network of the user's
    (containers find each other by name there), else the default bridge by address."""
    try:
        networks = json.loads(text)
        found = [(name, ipaddress.ip_interface(f"{value['IPAddress']}/{value['IPPrefixLen']}"))
                 for name, value in networks.items() if value.get("IPAddress")]
    except (ValueError, TypeError, KeyError, AttributeError):
        found = []
    if not found:
        raise ConfigurationError(f"docker did not say which network container {container} is "
                                 f"on ({text.strip()[:200]!r}): the WAL sidecar must reach it; "
                                 f"check `docker inspect {container}`")
    own = [(name, interface) for name, interface in found if name not in DEFAULT_NETWORKS]
    name, interface = (own or found)[0]
    if own:
        return ContainerNetwork(name=name, host=container, subnet=str(interface.network))
    return ContainerNetwork(name=None, host=str(interface.ip), subnet=str(interface.network))


@dataclass(frozen=True)
class Sidecar:
    container: str  # the server's container (POSTGRES_CONTAINER)
    network: ContainerNetwork
    major: int  # the server's major version: the image postgres:<major>
    port: int  # the server's port inside its container
    context: Path  # the build context: the agent's wheel and lock
    env_file: Path
    spool: Path  # WAL_SPOOL_DIR, the same path on the host and in the sidecar
    signing_key: Path | None
    user: str  # uid:gid owning the spool on the host


def sidecar_compose(sidecar: Sidecar) -> str:
    """Return a compose file with the sidecar service (values as JSON strings: YAML)."""
    quoted = json.dumps
    major, network, key = sidecar.major, sidecar.network, sidecar.signing_key
    pip = f"{SIDECAR_AGENT}/bin/pip install --no-cache-dir --disable-pip-version-check"
    environment = {"POSTGRES_CONTAINER": "", "POSTGRES_HOST": network.host,
                   "POSTGRES_PORT": str(sidecar.port),
                   "PG_BINDIR": f"/usr/lib/postgresql/{major}/bin",
                   "WAL_SPOOL_DIR": str(sidecar.spool)}
    volumes = [f"{sidecar.spool}:{sidecar.spool}"]
    if key is not None:
        environment["SIGNING_KEY_FILE"] = str(key)
        volumes.append(f"{key}:{key}:ro")
    where = (f"    networks: [{quoted(network.name)}]\nnetworks:\n  {quoted(network.name)}:\n"
             "    external: true\n" if network.name else
             "    # Docker's default bridge has no names: the server's address there changes\n"
             "    # when its container is made again (put it on a network of yours).\n"
             "    network_mode: bridge\n")
    return f"""# backup-agent's WAL stream beside the PostgreSQL {major} server in container
# {sidecar.container}:
#   docker compose -f {sidecar.context}/compose.yaml up -d --build
# It runs in host mode inside the sidecar (POSTGRES_CONTAINER emptied, POSTGRES_HOST the
# server's container); the build context holds the agent's wheel and requirements.lock
# (scripts/server/install-agent.sh --with-wal-stream puts them there).
services:
  {SIDECAR}:
    build:
      context: {quoted(str(sidecar.context))}
      dockerfile_inline: |
        FROM postgres:{major}
        RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \\
            && rm -rf /var/lib/apt/lists/*
        COPY requirements.lock backup_agent-*.whl /tmp/agent/
        RUN python3 -m venv {SIDECAR_AGENT} \\
            && {pip} --require-hashes --only-binary :all: -r /tmp/agent/requirements.lock \\
            && {pip} --no-deps /tmp/agent/backup_agent-*.whl \\
            && {SIDECAR_AGENT}/bin/pip check && rm -rf /tmp/agent
    image: {quoted(f"{SIDECAR}:{major}")}
    restart: always
    user: {quoted(sidecar.user)}
    command: [{quoted(f"{SIDECAR_AGENT}/bin/backup-agent")}, "wal", "stream"]
    env_file: {quoted(str(sidecar.env_file))}
    environment:
{"".join(f"      {name}: {quoted(value)}{chr(10)}" for name, value in environment.items())}\
    volumes:
{"".join(f"      - {quoted(volume)}{chr(10)}" for volume in volumes)}\
    # SIGTERM stops the stream cleanly (exit 130); pg_receivewal dies with it.
    stop_signal: SIGTERM
    stop_grace_period: 30s
{where}"""

"""The test bed: a real PostgreSQL, a real S3 endpoint, and the installed CLI.

One PostgreSQL server and one moto server for the whole session; every test gets its own
database (copied from a seeded template, so it is fast), its own bucket and its own backup
directory under tmp_path.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint, running_s3
from testbed.sample_data import load_sample_data

SEED_TEMPLATE = "seed_template"
AGENT = Path(sys.executable).parent / "backup-agent"
SHIMS = Path(__file__).resolve().parent.parent / "testbed" / "shims"
_names = itertools.count(1)

# Variables of the developer's machine that must not leak into a run under test.
_FOREIGN_VARIABLES = ("AWS_", "POSTGRES_", "PG", "S3_", "BACKUP_", "KEEP_LOCAL",
                      "GITHUB_STEP_SUMMARY", "DOCKER_", "ENCRYPT_TO", "AGE_")


def clean_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items()
            if not name.startswith(_FOREIGN_VARIABLES)}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with running_server() as server:
        server.create_database(SEED_TEMPLATE)
        load_sample_data(server, SEED_TEMPLATE)
        yield server


@pytest.fixture
def database(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database with the realistic sample schema and data."""
    name = f"app_{next(_names)}"
    pg_server.create_database(name, template=SEED_TEMPLATE)
    yield name
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with running_s3() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: S3Endpoint) -> str:
    name = f"test-backups-{next(_names)}"
    s3_endpoint.create_bucket(name)
    return name


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "backups"
    directory.mkdir()
    return directory


@pytest.fixture
def agent_env(pg_server: PostgresServer, database: str, backup_dir: Path,
              s3_endpoint: S3Endpoint, bucket: str) -> dict[str, str]:
    """Everything a `backup-agent` subprocess needs to back `database` up to `bucket`."""
    return {
        **clean_environment(),
        **pg_server.environment(database),
        **s3_endpoint.environment(),
        "BACKUP_DIR": str(backup_dir),
        "S3_BUCKET": bucket,
        # The server signs its backups, and trusts its own key when it restores them.
        "SIGNING_KEY_FILE": signed({})["SIGNING_KEY_FILE"],
        # Keep failure tests quick: one retry, not six.
        "AWS_MAX_ATTEMPTS": "2",
    }


@pytest.fixture(autouse=True)
def _isolated_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests (CliRunner) see no variables of the developer's machine."""
    for name in list(os.environ):
        if name.startswith(_FOREIGN_VARIABLES):
            monkeypatch.delenv(name)


DOCKER_CONTAINER = "dorami-postgres"


@pytest.fixture
def docker_shim(pg_server: PostgresServer, tmp_path: Path) -> dict[str, str]:
    """Variables that put the docker shim first on PATH, logging to tmp_path."""
    return {"PATH": f"{SHIMS}{os.pathsep}{os.environ['PATH']}",
            "DOCKER_SHIM_LOG": str(tmp_path / "docker-calls.jsonl"),
            "DOCKER_SHIM_CONTAINER": DOCKER_CONTAINER,
            "DOCKER_SHIM_PG_BINDIR": str(pg_server.bin_directory)}


def docker_calls(environment: Mapping[str, str]) -> list[list[str]]:
    """Return the argv (after `docker`) of every docker call the shim saw."""
    log = Path(environment["DOCKER_SHIM_LOG"])
    if not log.exists():
        return []
    return [json.loads(line)["argv"][1:] for line in log.read_text().splitlines()]


_SIGNING: dict[str, str] = {}


def signed(environment: Mapping[str, str]) -> dict[str, str]:
    """`environment` with a signing key (one per test session) that is also trusted: the
    server signs its backups and restores them as genuine (code may run as their owners)."""
    if not _SIGNING:
        import tempfile

        from backup_agent.keys.key_files import create_key_file

        key = Path(tempfile.mkdtemp(prefix="backup-agent-signing-")) / "signing.pem"
        public, _note = create_key_file(key, signing=True)
        _SIGNING.update(SIGNING_KEY_FILE=str(key), TRUSTED_SIGNING_KEYS=public)
    return {**environment, **_SIGNING}


def make_backup(environment: Mapping[str, str]) -> dict[str, Any]:
    """Run one real backup and return its JSON report."""
    result = run_agent(["backup", "--json"], environment)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def run_agent(arguments: list[str], environment: Mapping[str, str], *,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `backup-agent` as a subprocess and return its result."""
    return subprocess.run([str(AGENT), *arguments], env=dict(environment), capture_output=True,
                          text=True, timeout=300, check=False, cwd=cwd)


def answer_no_on_a_terminal(arguments: list[str],
                            environment: Mapping[str, str]) -> tuple[bool, int, str]:
    """Run `backup-agent ARGUMENTS` on a pseudo-terminal and answer "n" to its [y/N]
    question; return whether it asked, its exit code and everything it printed."""
    import pty
    import time

    pid, terminal = pty.fork()
    if pid == 0:
        os.execve(str(AGENT), [str(AGENT), *arguments],  # noqa: S606 - our CLI
                  {**environment, "TERM": "xterm"})
    output = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(terminal, 4096)
        except OSError:
            break
        if not data:
            break
        output += data
        if not answered and b"[y/N]" in output:
            os.write(terminal, b"n\n")
            answered = True
    os.close(terminal)
    _, status = os.waitpid(pid, 0)
    return answered, os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")

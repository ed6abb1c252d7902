"""A distinctive password and AWS secret never show up anywhere they could leak."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import psutil
import pytest

from testbed.postgres import PostgresServer
from tests.conftest import DOCKER_CONTAINER
from tests.faults.conftest import finish, start_agent

PASSWORD = "Pw-7f3a9c-distinctive-Zq"
AWS_SECRET = "aws-secret-5d1e8b-distinctive-Kx"


def watch_argv(agent: psutil.Process) -> list[str]:
    """Collect the command lines of the agent and every descendant until it exits."""
    seen: list[str] = []
    while agent.is_running() and agent.status() != psutil.STATUS_ZOMBIE:
        try:
            for process in [agent, *agent.children(recursive=True)]:
                seen.append("\0".join(process.cmdline()))
        except psutil.Error:
            pass
        time.sleep(0.002)
    return seen


@pytest.fixture
def secretive_env(agent_env: dict[str, str], pg_server: PostgresServer,
                  database: str) -> dict[str, str]:
    pg_server.psql("postgres", f"""
        DO $$ BEGIN CREATE ROLE secretive LOGIN SUPERUSER PASSWORD '{PASSWORD}';
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;""")
    return {**agent_env, "POSTGRES_USER": "secretive", "POSTGRES_PASSWORD": PASSWORD,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET}


@pytest.mark.parametrize("mode", ["direct", "docker", "failing"])
def test_secrets_appear_in_no_argv_output_report_summary_or_manifest(
        mode: str, secretive_env: dict[str, str], docker_shim: dict[str, str],
        backup_dir: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    environment = {**secretive_env, "GITHUB_STEP_SUMMARY": str(summary)}
    if mode == "docker":
        environment.update(docker_shim, POSTGRES_CONTAINER=DOCKER_CONTAINER)
    if mode == "failing":
        environment["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"
    agent = start_agent(["--debug", "backup", "--json"], environment)
    argv = watch_argv(psutil.Process(agent.pid))
    result = finish(agent)
    assert result.returncode == (5 if mode == "failing" else 0), result.stderr
    assert any("pg_dump" in line for line in argv)  # the watch did see the children
    places = {"argv": "\n".join(argv), "stdout": result.stdout, "stderr": result.stderr,
              "step summary": summary.read_text(),
              "manifests": "".join(path.read_text()
                                   for path in backup_dir.glob("*.manifest.json"))}
    if mode == "docker":
        places["docker argv"] = Path(environment["DOCKER_SHIM_LOG"]).read_text()
    for where, text in places.items():
        assert PASSWORD not in text, f"the password leaked into {where}"
        assert AWS_SECRET not in text, f"the AWS secret leaked into {where}"
    json.loads(result.stdout)  # and the JSON result is still one clean document


def watch_children_environments(agent: psutil.Process) -> list[dict[str, str]]:
    """Collect the environment of every descendant (pg_dump, psql, docker) until it exits."""
    seen: list[dict[str, str]] = []
    while agent.is_running() and agent.status() != psutil.STATUS_ZOMBIE:
        with contextlib.suppress(psutil.Error):
            # Read each time: at the first look the agent itself may not have exec'd yet
            # (it would still be pytest), and its own children be taken for programs.
            agents_program = (agent.exe(), agent.cmdline())
            seen += [environment for child in agent.children(recursive=True)
                     if (environment := settled_environment(child, agents_program))]
        time.sleep(0.002)
    return seen


def settled_environment(child: psutil.Process,
                        agents_program: tuple[str, list[str]]) -> dict[str, str]:
    """The environment of the program `child` runs, or {} if it was caught before its exec.

    A child caught between fork and exec still is the agent (the same program, the same
    environment); what counts is what the program it runs receives. The program (the kernel's
    /proc/<pid>/exe, which an exec replaces at once, and its command line: the docker shim is
    Python too) is read before and after the environment, so an exec between the reads is
    never taken for the program's own."""
    try:
        before = (child.exe(), child.cmdline())
        environment = child.environ()
        after = (child.exe(), child.cmdline())
    except psutil.Error:
        return {}
    return environment if before == after != agents_program else {}


@pytest.mark.parametrize("mode", ["direct", "docker"])
def test_children_get_a_minimal_environment_without_the_agents_secrets(
        mode: str, secretive_env: dict[str, str], docker_shim: dict[str, str]) -> None:
    environment = {**secretive_env, "NOTIFY_URL": "http://127.0.0.1:9/hook-distinctive",
                   "AGE_IDENTITY": "AGE-SECRET-KEY-1DISTINCTIVE"}
    if mode == "docker":
        environment.update(docker_shim, POSTGRES_CONTAINER=DOCKER_CONTAINER)
    agent = start_agent(["backup"], environment)
    children = watch_children_environments(psutil.Process(agent.pid))
    result = finish(agent)
    assert result.returncode == 0, result.stderr
    assert children  # the watch saw pg_dump and psql
    for child in children:
        leaked = {name for name in child
                  if name.startswith(("AWS_", "AGE_", "NOTIFY_", "POSTGRES_", "S3_"))}
        assert not leaked, leaked
        assert AWS_SECRET not in child.values()

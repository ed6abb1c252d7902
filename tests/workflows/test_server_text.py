"""What the server prints reaches the job log as text: it cannot issue a workflow command.

GitHub's runner reads every line of a step's output (stdout and stderr) as a possible
workflow command (`::error::`, `::add-mask::`, `::stop-commands::`...).
`scripts/without-workflow-commands.sh` switches them off with a random token around
everything the server says: remote.sh's and install-on-server.sh's ssh, and the
pre-deploy step's display of the server's report. `acted_on` reads a log as the runner
does.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SHIMS, clean_environment

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPTS = REPOSITORY / "scripts"
WORKFLOWS = sorted((REPOSITORY / ".github" / "workflows").glob("*.yml"))
HELPER = "scripts/without-workflow-commands.sh"
# What a hostile server prints: an annotation, a mask, a command switch of its own, an
# output, a resume with a token it guessed.
SPOOFS = ["::error title=Backup OK::all is well", "  ::warning::indented",
          "::add-mask::everything", "::stop-commands::server-token", "::server-token::",
          "::set-output name=outcome::s3", "::00000000000000000000000000000000::",
          "::error::after a guess"]
HOSTILE_SERVER = "#!/bin/sh\n" + "".join(
    f"echo '{line}'\necho '{line}' >&2\n" for line in SPOOFS) + "exit \"${SERVER_EXIT:-0}\"\n"
STOP = re.compile(r"^::stop-commands::([0-9a-f]{32})$")


def acted_on(log: str) -> list[str]:
    """Return the lines GitHub's runner would act on as workflow commands, in order.

    As the runner does: a line is trimmed; `::stop-commands::TOKEN` turns every command off
    until a line `::TOKEN::`.
    """
    acted: list[str] = []
    resume: str | None = None
    for raw_line in log.splitlines():
        line = raw_line.strip()
        if resume is not None:
            if line == resume:
                resume = None
            continue
        if line.startswith("::stop-commands::"):
            resume = f"::{line.removeprefix('::stop-commands::')}::"
        elif re.match(r"^::[\w-]+( [^:]*)?::", line):
            acted.append(line)
    return acted


def token_of(log: str) -> str:
    """Return the token of the one `::stop-commands::` line in `log`."""
    tokens = [match.group(1) for match in map(STOP.match, log.splitlines()) if match]
    assert len(tokens) == 1, log
    return tokens[0]


def server_lines(log: str) -> list[str]:
    """Return what was printed between the stop/resume pair, checking the pair is sound."""
    lines = log.splitlines()
    token = token_of(log)
    assert lines.count(f"::{token}::") == 1, log
    return lines[lines.index(f"::stop-commands::{token}") + 1:lines.index(f"::{token}::")]


def hostile_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    scripts = tmp_path / "server"
    scripts.mkdir(exist_ok=True)
    for name in ("run-agent.sh", "pre-deploy-backup.sh"):
        (scripts / name).write_text(HOSTILE_SERVER)
        (scripts / name).chmod(0o755)
    return {**clean_environment(), "PATH": f"{SHIMS}:{clean_environment()['PATH']}",
            "PRODUCTION_HOST": "prod.example.internal", "PRODUCTION_USER": "ubuntu",
            "SSH_SHIM_LOG": str(tmp_path / "ssh.jsonl"), "SSH_SHIM_REMOTE_ENV": "SERVER_EXIT",
            "REMOTE_SCRIPTS_DIR": str(scripts), "UPLOAD": "false", **extra}


@pytest.mark.parametrize("server_exit", ["0", "3"])
def test_remote_sh_prints_the_servers_stderr_with_commands_off(tmp_path: Path,
                                                                server_exit: str) -> None:
    environment = hostile_environment(tmp_path, SERVER_EXIT=server_exit)
    runs = [subprocess.run([str(SCRIPTS / "remote.sh"), "run-agent.sh", "backup", "--json"],
                           env=environment, capture_output=True, text=True, timeout=60,
                           check=False) for _ in range(2)]
    for result in runs:
        assert result.returncode == int(server_exit), result.stderr
        assert acted_on(result.stderr) == []
        assert server_lines(result.stderr) == SPOOFS  # every line, unchanged, inside
        assert result.stdout.splitlines() == SPOOFS  # the report, for a file
    # A fresh token each time: a server cannot replay one it saw in an old log.
    assert len({token_of(result.stderr) for result in runs}) == 2


def test_the_runners_own_annotations_still_work(tmp_path: Path) -> None:
    environment = hostile_environment(tmp_path, AGE_IDENTITY="AGE-SECRET-KEY-1QQQ")
    result = subprocess.run([str(SCRIPTS / "remote.sh"), "run-agent.sh", "status"],
                            env=environment, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2
    assert acted_on(result.stderr)[0].startswith("::error::remote.sh refuses")


def test_the_helper_needs_a_command_and_passes_its_status_on() -> None:
    usage = subprocess.run([str(SCRIPTS / "without-workflow-commands.sh")],
                           capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr
    failed = subprocess.run([str(SCRIPTS / "without-workflow-commands.sh"), "sh", "-c",
                             "echo '::error::x' >&2; exit 7"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 7
    assert server_lines(failed.stderr) == ["::error::x"] and acted_on(failed.stderr) == []


def steps_running(script: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in WORKFLOWS:
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            for step in job.get("steps", []):
                if script in step.get("run", ""):
                    found.append((f"{path.name}:{name}:{step.get('name')}", step))
    return found


def test_every_step_that_runs_remote_sh_keeps_the_servers_stdout_out_of_a_pipe() -> None:
    steps = steps_running("scripts/remote.sh")
    assert len(steps) == 5  # backup, base-backup, status, the restore test and pre-deploy
    for where, step in steps:
        text = step["run"].replace("\\\n", " ")
        for line in text.splitlines():
            if "scripts/remote.sh" in line:
                # Its stderr is bracketed by remote.sh; its stdout goes to a file...
                assert re.search(r"scripts/remote\.sh [^|]*> [\w.-]+", line), where
                assert "|" not in line.replace("||", ""), where
            elif re.search(r"\b(cat|tee|head|tail|less)\b [\w.-]+\.(out|json)\b", line) \
                    and "grep" not in line:
                # ...and is shown only with commands off.
                assert line.strip().startswith(f"{HELPER} "), where


def test_every_ssh_the_workflows_reach_runs_with_commands_off() -> None:
    sessions = 0
    for script in SCRIPTS.glob("*.sh"):
        for line in script.read_text().replace("\\\n", " ").splitlines():
            if line.lstrip().startswith("#") or not re.search(r"(^|[|;&\"\s])ssh\s", line):
                continue
            sessions += 1
            assert re.search(r'without-workflow-commands\.sh"\s+ssh\s', line), \
                f"{script.name}: {line}"
    assert sessions == 2  # remote.sh, install-on-server.sh


@pytest.mark.parametrize(("server_exit", "outcome"), [("0", "outcome=s3"), ("3", None)])
def test_the_pre_deploy_step_shows_the_servers_text_as_text(
        tmp_path: Path, server_exit: str, outcome: str | None) -> None:
    """The step's own script, run as GitHub runs it (`bash -e`), against a hostile server."""
    (tmp_path / "scripts").symlink_to(SCRIPTS)
    environment = hostile_environment(tmp_path, GITHUB_OUTPUT=str(tmp_path / "output"))
    server = "#!/bin/sh\n" + "".join(f"echo '{line}'\necho '{line}' >&2\n" for line in SPOOFS)
    if outcome:
        server += f"echo '{outcome}'\n"
    server += f"exit {server_exit}\n"
    (tmp_path / "server" / "pre-deploy-backup.sh").write_text(server)
    [(_, step)] = steps_running("pre-deploy-backup.sh")
    # One stream, in order, as the runner reads the step's output.
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=60, check=False)
    assert acted_on(result.stdout) == [], result.stdout
    assert result.stdout.count("::error title=Backup OK::all is well") == 2  # shown, as text
    if outcome:
        assert result.returncode == 0, result.stdout
        assert (tmp_path / "output").read_text() == f"{outcome}\n"
    else:  # a failed backup fails the step, so the deploy warns
        assert result.returncode == 3, result.stdout
        assert not (tmp_path / "output").exists()


def test_the_readme_says_how() -> None:
    readme = " ".join((REPOSITORY / "README.md").read_text().split())
    assert "cannot start an annotation of its own" in readme
    assert f"`{HELPER}` prints `::stop-commands::<token>`" in readme
    assert (REPOSITORY / HELPER).stat().st_mode & 0o111

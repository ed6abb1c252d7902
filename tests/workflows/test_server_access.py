"""What reaches the server, and how: quoted arguments, no age key, a private staging dir.

The ssh shim runs the remote command the way sshd does (one line for the login shell's
`-c`), with only the server's own variables; here the "server" is this machine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHIMS, clean_environment
from tests.workflows.test_server_text import server_lines

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPTS = REPOSITORY / "scripts"
HOSTILE = ["two words", "semi;colon; touch PWNED", "$(touch PWNED)", "`touch PWNED`",
           "it's \"quoted\"", "", "*", "$HOME", "new\nline", "back\\slash", "--json"]
PRINT_ARGUMENTS = """#!/usr/bin/env python3
import json, sys
print(json.dumps(sys.argv[1:]))
"""


def ssh_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**clean_environment(), "PATH": f"{SHIMS}:{clean_environment()['PATH']}",
            "PRODUCTION_HOST": "prod.example.internal", "PRODUCTION_USER": "ubuntu",
            "SSH_SHIM_LOG": str(tmp_path / "ssh.jsonl"), **extra}


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_remote_sh_quotes_every_argument_for_the_remote_shell(tmp_path: Path,
                                                               shell: str) -> None:
    scripts = tmp_path / "server scripts"  # a space in the remote path too
    scripts.mkdir()
    (scripts / "print-args.sh").write_text(PRINT_ARGUMENTS)
    (scripts / "print-args.sh").chmod(0o755)
    environment = ssh_environment(tmp_path, REMOTE_SCRIPTS_DIR=str(scripts),
                                  SSH_SHIM_SHELL=shell, UPLOAD="false")
    result = subprocess.run([str(SCRIPTS / "remote.sh"), "print-args.sh", *HOSTILE],
                            env=environment, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == HOSTILE
    assert not list(tmp_path.rglob("PWNED"))


def test_remote_sh_sends_role_credentials_on_stdin_only(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "show-stdin.sh").write_text("#!/bin/sh\ncat\n")
    (scripts / "show-stdin.sh").chmod(0o755)
    credentials = {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLEROLEKEY", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
                   "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLETOKEN", "S3_BUCKET": "bucket"}
    environment = ssh_environment(tmp_path, REMOTE_SCRIPTS_DIR=str(scripts), **credentials)
    result = subprocess.run([str(SCRIPTS / "remote.sh"), "show-stdin.sh"], env=environment,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.splitlines()) == {f"{name}={value}"
                                               for name, value in credentials.items()}
    ssh_argv = Path(environment["SSH_SHIM_LOG"]).read_text()
    assert not any(value in ssh_argv for value in credentials.values())


@pytest.mark.parametrize("variable", ["AGE_IDENTITY", "BACKUP_AGE_IDENTITY"])
def test_remote_sh_refuses_to_run_with_an_age_key_in_its_environment(
        tmp_path: Path, variable: str) -> None:
    environment = ssh_environment(tmp_path, **{variable: "AGE-SECRET-KEY-1QQQ"})
    result = subprocess.run([str(SCRIPTS / "remote.sh"), "run-agent.sh", "status"],
                            env=environment, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2 and "age private key" in result.stderr
    assert not Path(environment["SSH_SHIM_LOG"]).exists()  # ssh never ran


def test_run_agent_refuses_an_age_key_on_its_standard_input(tmp_path: Path) -> None:
    result = subprocess.run([str(SCRIPTS / "server" / "run-agent.sh"), "status"],
                            input="S3_BUCKET=b\nAGE_IDENTITY=AGE-SECRET-KEY-1QQQ\n",
                            env={**clean_environment(), "BACKUP_AGENT": "/bin/false"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "must never reach the server" in result.stderr


def install_environment(tmp_path: Path) -> dict[str, str]:
    """The runner's and the "server's" own temporary directories, apart."""
    for name in ("runner-tmp", "server-tmp"):
        (tmp_path / name).mkdir()
    return ssh_environment(
        tmp_path, TMPDIR=str(tmp_path / "runner-tmp"),
        INSTALL_PREFIX=str(tmp_path / "opt" / "backup-agent"),
        SSH_SHIM_REMOTE_ENV=f"TMPDIR={tmp_path / 'server-tmp'}")


def install(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPTS / "install-on-server.sh")], env=environment,
                          capture_output=True, text=True, timeout=600, check=False)


def test_install_stages_privately_and_installs_hash_checked_and_idempotently(
        tmp_path: Path) -> None:
    environment = install_environment(tmp_path)
    server_tmp = tmp_path / "server-tmp"
    # What the old fixed staging path invited: another local user creates it first.
    planted = server_tmp / "backup-agent-install" / "scripts"
    planted.mkdir(parents=True)
    (planted / "install-agent.sh").write_text(f"touch {tmp_path}/PWNED\n")

    first = install(environment)
    assert first.returncode == 0, first.stdout + first.stderr
    # What the server printed: on stderr, all of it with workflow commands off.
    said = server_lines(first.stderr)
    assert any("dependencies hash-checked" in line for line in said)
    prefix = Path(environment["INSTALL_PREFIX"])
    assert (prefix / "scripts" / "run-agent.sh").stat().st_mode & 0o111
    assert said[-1].startswith("backup-agent ")
    # The first install made the server's signing key, private, and printed its public half.
    key = prefix / "signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    public = (prefix / "signing-key.pub").read_text().strip()
    assert public.startswith("ed25519:")
    assert any(line.endswith(f"BACKUP_TRUSTED_SIGNING_KEYS secret: {public}") for line in said)
    pem = key.read_bytes()
    assert pem.decode() not in first.stdout + first.stderr
    assert not first.stdout.strip()

    second = install(environment)
    assert second.returncode == 0, second.stderr
    said_again = "\n".join(server_lines(second.stderr))
    assert "nothing changed" in said_again and "updated" not in said_again
    assert key.read_bytes() == pem and public in said_again  # the key is never replaced
    assert "created the signing key" not in said_again

    assert not (tmp_path / "PWNED").exists()
    # The staging directories (the server's and the runner's) are gone; the plant is untouched.
    assert [path.name for path in server_tmp.iterdir()] == ["backup-agent-install"]
    assert not list((tmp_path / "runner-tmp").iterdir())
    # One ssh session per install: no scp, no fixed path on the command line.
    sessions = [json.loads(line)["argv"] for line in
                Path(environment["SSH_SHIM_LOG"]).read_text().splitlines()]
    assert len(sessions) == 2 and all("mktemp -d" in argv[-1] for argv in sessions)
    assert not any("backup-agent-install" in argv[-1] for argv in sessions)


def test_install_cleans_up_the_staging_directory_when_it_fails(tmp_path: Path) -> None:
    environment = install_environment(tmp_path)
    environment["SSH_SHIM_REMOTE_ENV"] += ",PYTHON=/nonexistent/python3"
    failed = install(environment)
    assert failed.returncode != 0
    assert not list((tmp_path / "server-tmp").iterdir())


def test_install_refuses_dependencies_whose_hash_does_not_match(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "requirements.lock").write_text("six==1.17.0 \\\n    --hash=sha256:" + "0" * 64
                                               + "\n")
    wheel = tmp_path / "backup_agent-0.0.0-py3-none-any.whl"
    wheel.write_bytes(b"not reached")
    prefix = tmp_path / "prefix"
    result = subprocess.run(["bash", str(SCRIPTS / "server" / "install-agent.sh"), str(wheel),
                             str(scripts), str(prefix)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr, result.stderr
    assert not (prefix / ".installed-wheel.sha256").exists()


SHOW_SIGNING_KEY = """#!/bin/sh
echo "SIGNING_KEY_FILE=${SIGNING_KEY_FILE:-}"
"""


@pytest.mark.parametrize("env_file_line", ["", "SIGNING_KEY_FILE=/etc/other.pem\n",
                                           "export SIGNING_KEY_FILE=/etc/other.pem\n"])
def test_run_agent_signs_with_the_installed_key_unless_the_env_file_names_one(
        tmp_path: Path, env_file_line: str) -> None:
    prefix = tmp_path / "backup-agent"
    (prefix / "scripts").mkdir(parents=True)
    script = prefix / "scripts" / "run-agent.sh"
    script.write_bytes((SCRIPTS / "server" / "run-agent.sh").read_bytes())
    script.chmod(0o755)
    shim = tmp_path / "agent"
    shim.write_text(SHOW_SIGNING_KEY)
    shim.chmod(0o755)
    env_file = tmp_path / ".env.production"
    env_file.write_text("POSTGRES_DB=app\n" + env_file_line)
    environment = {**clean_environment(), "BACKUP_AGENT": str(shim),
                   "BACKUP_ENV_FILE": str(env_file)}

    def signing_key_seen() -> str:
        result = subprocess.run([str(script), "status"], env=environment, input="",
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert signing_key_seen() == "SIGNING_KEY_FILE="  # no key installed: nothing invented
    (prefix / "signing-key.pem").write_text("a key\n")
    expected = "" if env_file_line else str(prefix / "signing-key.pem")
    assert signing_key_seen() == f"SIGNING_KEY_FILE={expected}"


@pytest.mark.parametrize("switch", ["yes", "no"])
def test_install_asks_the_server_for_the_wal_stream_service_only_when_told(
        tmp_path: Path, switch: str) -> None:
    environment = install_environment(tmp_path)
    environment["INSTALL_WAL_STREAM"] = switch
    environment["SSH_SHIM_REMOTE_ENV"] += ",PYTHON=/nonexistent/python3"  # stop early
    assert install(environment).returncode != 0
    session = json.loads(Path(environment["SSH_SHIM_LOG"]).read_text().splitlines()[0])
    command = session["argv"][-1]
    assert "${3:+--with-wal-stream}" in command
    assert command.endswith("'yes'" if switch == "yes" else "''")

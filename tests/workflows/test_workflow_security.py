"""Who holds what in the workflows: environments, the age key, OIDC, hash-checked installs.

Read from the workflow files themselves (and the scripts their steps run), so a change that
moves a secret into the wrong job, or an ssh into the age key's job, fails here.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.test_consistency import PINNED, WORKFLOWS, load
from tests.workflows.test_lint import ZIZMOR

REPOSITORY = Path(__file__).resolve().parents[2]
README = (REPOSITORY / "README.md").read_text()
PREVIEW_SECRETS = {"PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL",
                   "PULUMI_PREVIEW_ROLE_ARN"}
AWS_ACTION = "aws-actions/configure-aws-credentials@"
# infra/ is on sys.path (test_consistency puts it there: infra/ uses sibling imports).
DEFAULT_ROLE_SESSION_SECONDS: int = importlib.import_module(
    "stack_settings").DEFAULT_ROLE_SESSION_SECONDS
REMOTE = re.compile(r"\b(ssh|scp|remote\.sh|install-on-server\.sh|ssh-setup\.sh)\b")
# A step that needs AWS credentials in its environment, directly or on the server.
NEEDS_AWS = re.compile(r"remote\.sh|runner_checks\.py|restore-test-on-runner\.sh|"
                       r"drill-on-runner\.sh")


def jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in WORKFLOWS
            for name, job in load(path)["jobs"].items()]


def job_ids() -> list[str]:
    return [f"{workflow}:{name}" for workflow, name, _ in jobs()]


def secrets_in(value: Any) -> set[str]:
    return set(re.findall(r"secrets\.([A-Z0-9_]+)", json.dumps(value)))


def scripts_reached(text: str, seen: set[Path] | None = None) -> set[Path]:
    """The repository's scripts a step's text runs, and the ones those run, transitively."""
    seen = set() if seen is None else seen
    for relative in re.findall(r"(?:scripts/|\$here/)([\w./-]+\.(?:sh|py))", text):
        for path in (REPOSITORY / "scripts" / relative, REPOSITORY / "scripts" / "server" /
                     relative):
            if path.is_file() and path not in seen:
                seen.add(path)
                scripts_reached(path.read_text(), seen)
    return seen


def step_text(step: dict[str, Any]) -> str:
    return json.dumps(step)


def uses_aws(job: dict[str, Any]) -> bool:
    return bool(secrets_in(job) & {"PROD_AWS_ACCESS_KEY_ID", "PROD_AWS_SECRET_ACCESS_KEY"})


@pytest.mark.parametrize(("workflow", "name", "job"), jobs(), ids=job_ids())
def test_every_job_with_production_secrets_runs_in_the_production_environment(
        workflow: str, name: str, job: dict[str, Any]) -> None:
    held = secrets_in(job) - {"GITHUB_TOKEN"}
    if "uses" in job:  # a reusable workflow: environment secrets cannot be passed to it
        assert "secrets" not in job, f"{name}: its own job reads them in its environment"
        return
    if held & PREVIEW_SECRETS:
        assert job.get("environment") == "infra-preview", name
        assert not held - PREVIEW_SECRETS, f"{name}: production secrets in the preview"
    elif held:
        assert job.get("environment") == "production", f"{workflow}:{name} holds {held}"


def test_no_secret_is_workflow_wide() -> None:
    for path in WORKFLOWS:
        document = load(path)
        assert not secrets_in({key: value for key, value in document.items()
                               if key != "jobs"}), path.name


@pytest.mark.parametrize(("workflow", "name", "job"), jobs(), ids=job_ids())
def test_no_step_that_holds_the_age_key_runs_ssh_or_scp(workflow: str, name: str,
                                                        job: dict[str, Any]) -> None:
    if "BACKUP_AGE_IDENTITY" not in secrets_in(job):
        return
    # Only in a step's own env: nothing before or after it in the job sees the key...
    outside_steps = {key: value for key, value in job.items() if key != "steps"}
    assert "BACKUP_AGE_IDENTITY" not in secrets_in(outside_steps)
    for step in job["steps"]:
        holds = "BACKUP_AGE_IDENTITY" in secrets_in(step)
        if holds:
            assert "BACKUP_AGE_IDENTITY" in secrets_in(step.get("env", {}))
            assert "BACKUP_AGE_IDENTITY" not in step_text(step).split('"run"')[-1]
        # ...and no step of that job reaches the server, directly or through a script.
        text = step.get("run", "")
        assert not REMOTE.search(text), f"{name}: {text!r}"
        for script in scripts_reached(text):
            assert not REMOTE.search(script.read_text()), f"{name} runs {script.name}"


def test_the_restore_tests_and_the_freshness_check_read_s3() -> None:
    backup = load(REPOSITORY / ".github" / "workflows" / "backup-database.yml")["jobs"]
    on_runner = "\n".join(step.get("run", "") for step in backup["restore-test"]["steps"])
    assert "scripts/restore-test-on-runner.sh" in on_runner
    script = (REPOSITORY / "scripts" / "restore-test-on-runner.sh").read_text()
    assert "runner_checks.py\" newest-backup" in script and 'verify "$uri"' in script
    on_server = "\n".join(step.get("run", "")
                          for step in backup["restore-test-on-server"]["steps"])
    assert "run-agent.sh verify latest --from s3 --restore-test" in on_server
    freshness = "\n".join(step.get("run", "") for step in backup["freshness"]["steps"])
    assert "check-freshness" in freshness
    # The server-side variant is opt-in; the runner is the default.
    plan = backup["plan"]["steps"][0]["run"]
    assert 'where="${WHERE_VARIABLE:-runner}"' in plan
    # The drill: on the runner, weekly, only once PITR is on; its image's major from the
    # newest signed base backup, the keys by name into its container.
    drill = backup["drill"]
    assert "vars.PITR_ENABLED == 'true'" in drill["if"] and "ssh" not in str(drill)
    assert "scripts/drill-on-runner.sh" in drill["steps"][-1]["run"]
    script = (REPOSITORY / "scripts" / "drill-on-runner.sh").read_text()
    assert 'runner_checks.py" newest-base-backup' in script and "drill --json" in script
    assert "--env AGE_IDENTITY --env TRUSTED_SIGNING_KEYS" in script


@pytest.mark.parametrize(("workflow", "name", "job"), jobs(), ids=job_ids())
def test_aws_comes_from_the_oidc_role_when_set_else_from_the_static_key(
        workflow: str, name: str, job: dict[str, Any]) -> None:
    permissions = job.get("permissions", {})
    if "uses" in job:  # the caller grants what the reusable workflow's job asks for
        callee = load(REPOSITORY / job["uses"])
        wanted = any(inner.get("permissions", {}).get("id-token") == "write"
                     for inner in callee["jobs"].values())
        assert (permissions.get("id-token") == "write") == wanted, name
        return
    if not uses_aws(job):
        assert permissions.get("id-token") != "write" or name == "preview", name
        return
    assert permissions.get("id-token") == "write", name
    outside_steps = {key: value for key, value in job.items() if key != "steps"}
    assert not secrets_in(outside_steps) & {"PROD_AWS_ACCESS_KEY_ID",
                                            "PROD_AWS_SECRET_ACCESS_KEY"}, name
    steps = job["steps"]
    credentials = [index for index, step in enumerate(steps)
                   if step.get("uses", "").startswith(AWS_ACTION)]
    role, static = (steps[index] for index in credentials)
    assert PINNED.match(role["uses"]) and PINNED.match(static["uses"])
    assert role["if"] == "${{ vars.AWS_ROLE_ARN != '' }}"
    assert role["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    # The session the role allows (the program writes the variable), not the action's 1 hour.
    assert role["with"]["role-duration-seconds"] == \
        f"${{{{ vars.AWS_ROLE_SESSION_SECONDS || {DEFAULT_ROLE_SESSION_SECONDS} }}}}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(role["with"])
    assert static["if"] == "${{ vars.AWS_ROLE_ARN == '' }}"
    assert static["with"]["aws-access-key-id"] == "${{ secrets.PROD_AWS_ACCESS_KEY_ID }}"
    assert "role-to-assume" not in static["with"]
    # Both before anything that talks to S3 or the server.
    first_use = min(index for index, step in enumerate(steps)
                    if NEEDS_AWS.search(step.get("run", "")))
    assert max(credentials) < first_use, name


@pytest.mark.parametrize(("workflow", "name", "job"), jobs(), ids=job_ids())
def test_a_role_session_outlasts_the_job_that_holds_it(workflow: str, name: str,
                                                       job: dict[str, Any]) -> None:
    if "uses" in job or not uses_aws(job):
        return
    # The credentials come a step or two into the job; they must last to its timeout.
    assert job["timeout-minutes"] * 60 <= DEFAULT_ROLE_SESSION_SECONDS, f"{workflow}:{name}"


def test_role_credentials_reach_the_server_with_their_session_token() -> None:
    remote = (REPOSITORY / "scripts" / "remote.sh").read_text()
    run_agent = (REPOSITORY / "scripts" / "server" / "run-agent.sh").read_text()
    assert "AWS_SESSION_TOKEN" in remote and "AWS_SESSION_TOKEN" in run_agent


def pip_installs(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    return [line for line in joined.splitlines()
            if re.search(r"pip\"? install", line) and not line.lstrip().startswith("#")]


def test_every_production_install_is_hash_checked_or_takes_no_dependencies() -> None:
    texts = [(path.name, path.read_text()) for path in WORKFLOWS
             if path.name not in ("ci.yml", "infra-preview.yml")]  # no production secrets
    texts += [(path.name, path.read_text()) for path in
              [*REPOSITORY.joinpath("scripts").glob("*.sh"),
               *REPOSITORY.joinpath("scripts", "server").glob("*.sh")]]
    found = 0
    for name, text in texts:
        for line in pip_installs(text):
            found += 1
            assert "--require-hashes" in line or "--no-deps" in line, f"{name}: {line}"
            if "--require-hashes" in line:
                assert "--only-binary ':all:'" in line, f"{name}: {line}"
    assert found >= 4
    for lock in ("scripts/server/requirements.lock", "scripts/build-requirements.lock"):
        requirements = re.split(r"\n(?=\S)", (REPOSITORY / lock).read_text())
        pinned = [entry for entry in requirements if not entry.startswith("#") and entry]
        assert pinned and all(re.match(r"[\w.-]+==\S+", entry) and "--hash=sha256:" in entry
                              for entry in pinned), lock


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    lock = (REPOSITORY / "scripts" / "server" / "requirements.lock").read_text()
    pins = {re.sub(r"[-_.]+", "-", name).lower(): version
            for name, version in re.findall(r"^([\w.-]+)==([^\s;]+)", lock, re.MULTILINE)}
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency.split("#")[0])
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in the lock: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}"


def test_install_staging_on_the_server_is_private() -> None:
    script = (REPOSITORY / "scripts" / "install-on-server.sh").read_text()
    assert 'staging="$(mktemp -d)"' in script and "trap 'rm -rf \"$staging\"' EXIT" in script
    assert "/tmp/" not in script and "scp" not in script


def zizmor_auditor_findings() -> set[tuple[str, str]]:
    result = subprocess.run([str(ZIZMOR), "--offline", "--no-progress", "--persona=auditor",
                             "--format", "json", str(REPOSITORY / ".github" / "workflows")],
                            cwd=REPOSITORY, capture_output=True, text=True, check=False)
    return {(finding["ident"],
             Path(finding["locations"][0]["symbolic"]["key"]["Local"]["verbatim_path"]).name)
            for finding in json.loads(result.stdout)}


def test_zizmor_as_auditor_finds_only_what_the_readme_explains() -> None:
    findings = zizmor_auditor_findings()
    assert findings <= {("self-repository", "deploy-production.yml")}, findings
    for ident, _ in findings:
        assert f"`{ident}`" in README, f"the README must explain zizmor's {ident}"


def test_the_repository_variables_the_workflows_read_are_documented() -> None:
    used = {name for path in WORKFLOWS
            for name in re.findall(r"vars\.([A-Z0-9_]+)", path.read_text())}
    assert used == {"AWS_ROLE_ARN", "AWS_ROLE_SESSION_SECONDS", "PITR_ENABLED", "RESTORE_TEST_ON",
                    "RESTORE_TEST_POSTGRES_MAJOR"}
    for name in used:
        assert f"`{name}`" in README, name

"""The workflows agree with the rest of the project: secrets, commands, schedule, hygiene."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from backup_agent.cli import app
from tests.infra.harness import INFRA

REPOSITORY = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPOSITORY / ".github" / "workflows").glob("*.yml"))
sys.path.insert(0, str(INFRA))
import github_environment  # noqa: E402 - infra/ uses sibling imports
import stack_settings  # noqa: E402

PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# Secrets the user sets by hand (SSH access, the preview's Pulumi access), per the README.
HAND_MADE = {"PRODUCTION_HOST", "PRODUCTION_USER", "PRODUCTION_SSH_KEY",
             "PRODUCTION_KNOWN_HOSTS", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE",
             "PULUMI_PREVIEW_ROLE_ARN", "PULUMI_BACKEND_URL", "GITHUB_TOKEN",
             "BACKUP_AGE_IDENTITY", "BACKUP_TRUSTED_SIGNING_KEYS"}
PULUMI_WRITTEN = {github_environment.BUCKET_SECRET, github_environment.ACCESS_KEY_ID_SECRET,
                  github_environment.SECRET_ACCESS_KEY_SECRET}


def load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    return document


def triggers(document: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    found: dict[str, Any] = document["on"] if "on" in document else document[True]
    return found


def test_the_secrets_read_are_the_ones_pulumi_writes_or_the_readme_lists() -> None:
    used = {name for path in WORKFLOWS
            for name in re.findall(r"secrets\.([A-Z0-9_]+)", path.read_text())}
    assert used - HAND_MADE == PULUMI_WRITTEN


def test_the_jobs_that_read_pulumis_secrets_run_in_the_environment_it_writes_them_to() -> None:
    readers = [(path.name, name, job) for path in WORKFLOWS
               for name, job in load(path)["jobs"].items()
               if set(re.findall(r"secrets\.([A-Z0-9_]+)", str(job))) & PULUMI_WRITTEN]
    assert len(readers) >= 5
    for workflow, name, job in readers:
        assert job.get("environment") == stack_settings.PRODUCTION_ENVIRONMENT, f"{workflow}:{name}"
    # ...which deploys from the branch the deploy workflow runs on.
    deploy = load(REPOSITORY / ".github" / "workflows" / "deploy-production.yml")
    assert triggers(deploy)["push"]["branches"] == [github_environment.DEPLOYMENT_BRANCH]


def test_the_schedule_is_the_guides() -> None:
    backup = load(REPOSITORY / ".github" / "workflows" / "backup-database.yml")
    assert triggers(backup)["schedule"] == [{"cron": "0 2 * * *"}]
    assert "workflow_dispatch" in triggers(backup)


def agent_commands_in(text: str) -> set[str]:
    return set(re.findall(r"run-agent\.sh ([\w-]+)", text))


def test_the_agent_commands_the_workflows_run_exist() -> None:
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    commands = set().union(*(agent_commands_in(path.read_text()) for path in WORKFLOWS),
                           agent_commands_in((REPOSITORY / "scripts" / "server" /
                                              "pre-deploy-backup.sh").read_text()))
    assert commands >= {"backup", "verify"}
    for command in commands:
        assert re.search(rf"│ {command} ", help_text), command


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_hygiene(path: Path) -> None:
    document = load(path)
    assert document["permissions"] == {}, "workflow-level permissions must be empty"
    for name, job in document["jobs"].items():
        assert "permissions" in job, f"{name}: explicit per-job permissions"
        if "uses" in job:
            continue  # a reusable workflow: its own jobs are checked in its own file
        assert "timeout-minutes" in job, f"{name}: every job has a timeout"
        for step in job["steps"]:
            if "uses" not in step:
                continue
            assert PINNED.match(step["uses"]), f"{name}: {step['uses']} is not pinned to a SHA"
            if step["uses"].startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_backups_never_overlap() -> None:
    groups = set()
    for name in ("backup-database.yml", "pre-deploy-backup.yml"):
        document = load(REPOSITORY / ".github" / "workflows" / name)
        group = document.get("concurrency") or document["jobs"]["backup"]["concurrency"]
        assert group["cancel-in-progress"] is False
        groups.add(group["group"])
    assert groups == {"production-database-backup"}

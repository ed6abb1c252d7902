"""The optional OIDC role for GitHub Actions (githubOidc), under mocks, in both states."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.harness import ACCOUNT, PROJECT, ProgramRun, run_program
from tests.infra.test_program import writer_statements

PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ROLE = "aws:iam/role:Role"
VARIABLE = "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/dorami-backup-github-actions"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


def trust(run: ProgramRun) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run.one(ROLE).inputs["assumeRolePolicy"])
    return document


def test_off_by_default_nothing_of_it_exists() -> None:
    run = run_program()
    for type_token in (PROVIDER, ROLE, VARIABLE, "aws:iam/rolePolicy:RolePolicy",
                       "dorami:backups:GithubOidcRole"):
        assert run.of_type(type_token) == []
    assert "githubRoleArn" not in run.globals["outputs"]


@pytest.fixture(scope="module")
def oidc_run() -> ProgramRun:
    return run_program({f"{PROJECT}:githubOidc": "true"})


def test_github_oidc_provider_for_sts(oidc_run: ProgramRun) -> None:
    provider = oidc_run.one(PROVIDER).inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]


def test_the_role_trusts_only_the_production_environment_of_the_repository(
        oidc_run: ProgramRun) -> None:
    role = oidc_run.one(ROLE).inputs
    assert role["name"] == "dorami-backup-github-actions"
    # Two hours: longer than any job that holds the session (a backup's multipart upload
    # completes after the dump, and the runner then checks it).
    assert role["maxSessionDuration"] == 7200.0
    assert trust(oidc_run)["Statement"] == [{
        "Sid": "GithubActionsProductionEnvironment", "Effect": "Allow",
        "Principal": {"Federated": PROVIDER_ARN},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub":
                "repo:dorami/dorami:environment:production"}}}]


def test_the_role_has_exactly_the_writers_policy(oidc_run: ProgramRun) -> None:
    role_policy = json.loads(oidc_run.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert role_policy["Statement"] == writer_statements(oidc_run)


def test_the_role_arn_is_the_production_environments_variable(oidc_run: ProgramRun) -> None:
    variables = {resource.inputs["variableName"]: resource.inputs
                 for resource in oidc_run.of_type(VARIABLE)}
    # Only jobs in that environment may assume the role, and only they read the variable.
    assert variables["AWS_ROLE_ARN"] == {"repository": "dorami", "environment": "production",
                                         "variableName": "AWS_ROLE_ARN", "value": ROLE_ARN}
    # ...and the session length the workflows ask for: what the role allows.
    assert variables["AWS_ROLE_SESSION_SECONDS"] == {
        "repository": "dorami", "environment": "production",
        "variableName": "AWS_ROLE_SESSION_SECONDS", "value": "7200"}
    assert oidc_run.of_type("github:index/actionsVariable:ActionsVariable") == []
    assert oidc_run.output("githubRoleArn") == ROLE_ARN
    # The static key stays: the workflows use it until AWS_ROLE_ARN is set.
    assert len(oidc_run.of_type(
        "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret")) == 3


def test_the_session_length_is_a_stack_setting() -> None:
    run = run_program({f"{PROJECT}:githubOidc": "true",
                       f"{PROJECT}:githubRoleSessionSeconds": "14400"})
    assert run.one(ROLE).inputs["maxSessionDuration"] == 14400.0
    assert {resource.inputs["variableName"]: resource.inputs["value"]
            for resource in run.of_type(VARIABLE)}["AWS_ROLE_SESSION_SECONDS"] == "14400"


@pytest.mark.parametrize("seconds", ["3599", "43201", "0"])
def test_a_session_length_iam_refuses_is_a_clear_error(seconds: str) -> None:
    with pytest.raises(Exception, match="githubRoleSessionSeconds must be 3600 to 43200"):
        run_program({f"{PROJECT}:githubOidc": "true",
                     f"{PROJECT}:githubRoleSessionSeconds": seconds})


def test_an_existing_provider_is_reused_not_declared_again() -> None:
    existing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    run = run_program({f"{PROJECT}:githubOidc": "true",
                       f"{PROJECT}:githubOidcProviderArn": existing,
                       f"{PROJECT}:githubRoleName": "other-role"})
    assert run.of_type(PROVIDER) == []
    assert trust(run)["Statement"][0]["Principal"] == {"Federated": existing}
    assert run.one(ROLE).inputs["name"] == "other-role"


def test_without_managed_github_settings_the_arn_is_only_an_output() -> None:
    run = run_program({f"{PROJECT}:githubOidc": "true",
                       f"{PROJECT}:manageGithubSecrets": "false"})
    assert run.of_type(VARIABLE) == []
    assert run.output("githubRoleArn") == ROLE_ARN


def test_oidc_without_an_owner_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="github:owner"):
        run_program({f"{PROJECT}:githubOidc": "true", "github:owner": ""})

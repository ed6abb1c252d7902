"""Optional short-lived credentials: a role GitHub Actions assumes through OIDC.

With `githubOidc: true`, jobs in the repository's `production` environment can assume a role
with the writer's own policy instead of holding the static key: the workflows use it when
the `production` environment's variable AWS_ROLE_ARN is set
(aws-actions/configure-aws-credentials), and fall back to the static key otherwise.
Sessions last `githubRoleSessionSeconds`: the role's maximum, and the environment's variable
AWS_ROLE_SESSION_SECONDS, which the workflows ask for. An account has one provider per
issuer URL; if it already has GitHub's (say, for the infra preview's role), pass its ARN as
`githubOidcProviderArn`.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_github as github
from github_environment import GithubEnvironment
from policy_documents import (
    GITHUB_OIDC_AUDIENCE,
    GITHUB_OIDC_HOST,
    github_actions_trust_policy,
    writer_policy,
)
from stack_settings import StackSettings

# The variables the workflows read (`vars.AWS_ROLE_ARN`, `vars.AWS_ROLE_SESSION_SECONDS`):
# names, not secrets.
ROLE_ARN_VARIABLE = "AWS_ROLE_ARN"
SESSION_SECONDS_VARIABLE = "AWS_ROLE_SESSION_SECONDS"


class GithubOidcRole(pulumi.ComponentResource):
    """GitHub's OIDC provider (unless given), the role it may assume, and its variables."""

    def __init__(self, name: str, settings: StackSettings, bucket: aws.s3.Bucket, *,
                 environment: GithubEnvironment | None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dorami:backups:GithubOidcRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        provider_arn: pulumi.Input[str]
        if settings.github_oidc_provider_arn:
            provider_arn = settings.github_oidc_provider_arn
        else:
            # No thumbprints: IAM trusts GitHub's issuer through its own CA library.
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-provider", url=f"https://{GITHUB_OIDC_HOST}",
                client_id_lists=[GITHUB_OIDC_AUDIENCE], opts=child).arn
        subject = settings.github_subject
        self.role = aws.iam.Role(
            name, name=settings.github_role_name,
            max_session_duration=settings.github_role_session_seconds,
            assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                lambda arn: json.dumps(github_actions_trust_policy(arn, subject))),
            opts=child)
        aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id, name="backup-writer",
            policy=bucket.bucket.apply(lambda bucket_name: json.dumps(
                writer_policy(bucket_name, settings.backup_prefix))),
            opts=child)
        if environment is not None:  # the role trusts only that environment's jobs
            variables: dict[str, pulumi.Input[str]] = {
                ROLE_ARN_VARIABLE: self.role.arn,
                SESSION_SECONDS_VARIABLE: str(settings.github_role_session_seconds)}
            for variable_name, value in variables.items():
                github.ActionsEnvironmentVariable(
                    f"{name}-{variable_name.lower().replace('_', '-')}",
                    repository=environment.repository, environment=environment.name,
                    variable_name=variable_name, value=value, opts=child)
        self.register_outputs({"role_arn": self.role.arn})

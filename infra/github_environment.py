"""The repository's `production` environment and the secrets `pulumi up` writes into it.

Environment secrets, not repository secrets: GitHub hands them only to a job that names the
environment, and the environment deploys from `main` only, so a workflow pushed on another
branch gets nothing (the workflows' jobs all say `environment: production`).
"""

from __future__ import annotations

import pulumi
import pulumi_github as github
from stack_settings import PRODUCTION_ENVIRONMENT

# The names the guide (and .github/workflows/backup-database.yml) use: names, not values.
BUCKET_SECRET = "PROD_S3_BACKUP_BUCKET"  # noqa: S105
ACCESS_KEY_ID_SECRET = "PROD_AWS_ACCESS_KEY_ID"  # noqa: S105
SECRET_ACCESS_KEY_SECRET = "PROD_AWS_SECRET_ACCESS_KEY"  # noqa: S105
DEPLOYMENT_BRANCH = "main"


def resource_suffix(name: str) -> str:
    return name.lower().replace("_", "-")


class GithubEnvironment(pulumi.ComponentResource):
    """The `production` environment (deployments from `main` only) and its Actions secrets.

    The environment is protected: it also holds the secrets you add by hand (SSH key, age
    key), and deleting it would delete them.
    """

    def __init__(self, name: str, repository: str, values: dict[str, pulumi.Input[str]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dorami:backups:GithubEnvironment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = repository
        self.environment = github.RepositoryEnvironment(
            f"{name}-{PRODUCTION_ENVIRONMENT}", repository=repository,
            environment=PRODUCTION_ENVIRONMENT,
            # Selected branches (not "protected branches"): exactly the rule below.
            deployment_branch_policy=github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                protected_branches=False, custom_branch_policies=True),
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        # Reading the name off the resource orders every child after the environment.
        self.name: pulumi.Output[str] = self.environment.environment
        github.RepositoryEnvironmentDeploymentPolicy(
            f"{name}-{PRODUCTION_ENVIRONMENT}-{DEPLOYMENT_BRANCH}", repository=repository,
            environment=self.name, branch_pattern=DEPLOYMENT_BRANCH, opts=child)
        self.values = {secret_name: pulumi.Output.secret(value)
                       for secret_name, value in values.items()}
        self.secrets = {
            secret_name: github.ActionsEnvironmentSecret(
                f"{name}-{resource_suffix(secret_name)}", repository=repository,
                environment=self.name, secret_name=secret_name, value=value, opts=child)
            for secret_name, value in self.values.items()}
        self.register_outputs({})

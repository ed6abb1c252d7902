"""The three GitHub Actions secrets the backup workflows read, written by `pulumi up`."""

from __future__ import annotations

import pulumi
import pulumi_github as github

# The names the guide (and .github/workflows/backup-database.yml) use: names, not values.
BUCKET_SECRET = "PROD_S3_BACKUP_BUCKET"  # noqa: S105
ACCESS_KEY_ID_SECRET = "PROD_AWS_ACCESS_KEY_ID"  # noqa: S105
SECRET_ACCESS_KEY_SECRET = "PROD_AWS_SECRET_ACCESS_KEY"  # noqa: S105


class GithubSecrets(pulumi.ComponentResource):
    """Actions secrets in one repository; every value is a Pulumi secret."""

    def __init__(self, name: str, repository: str, values: dict[str, pulumi.Input[str]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dorami:backups:GithubSecrets", name, None, opts)
        self.values = {secret_name: pulumi.Output.secret(value)
                       for secret_name, value in values.items()}
        self.secrets = {
            secret_name: github.ActionsSecret(
                f"{name}-{secret_name.lower().replace('_', '-')}",
                repository=repository, secret_name=secret_name, value=value,
                opts=pulumi.ResourceOptions(parent=self))
            for secret_name, value in self.values.items()}
        self.register_outputs({})

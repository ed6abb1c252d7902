"""Run the Pulumi program under mocks and record what it registers.

The program runs fresh each time (runpy, as `pulumi` itself runs `main: infra/`), with
`preview=False` so that `.apply` callbacks really run. Raw mock inputs are camelCase.
Mocks never see resource options, so each resource's `protect` (after Pulumi merged the
parent's) is read off the resource object itself.
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

PROJECT = "dorami-db-backups"
ACCOUNT = "123456789012"
INFRA = Path(__file__).resolve().parents[2] / "infra"
DEFAULT_CONFIG = {
    "aws:region": "ap-northeast-2",
    "github:owner": "dorami",
    f"{PROJECT}:bucketName": "dorami-db-backups-prod",
    f"{PROJECT}:githubRepository": "dorami",
}


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Registered(type=args.typ, name=args.name, inputs=dict(args.inputs)))
        state = dict(args.inputs)
        if args.typ == "aws:s3/bucket:Bucket":
            state["arn"] = f"arn:aws:s3:::{args.inputs['bucket']}"
            return args.inputs["bucket"], state
        if args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.inputs['name']}"
        if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(args.inputs["url"]).removeprefix("https://")
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
        if args.typ == "aws:iam/accessKey:AccessKey":
            state["secret"] = "mock-secret-access-key"
            return "AKIAMOCKACCESSKEY000", state
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


@dataclass
class ProgramRun:
    resources: list[Registered]
    globals: dict[str, Any]
    protected: dict[str, bool] = field(default_factory=dict)  # by resource name

    def of_type(self, type_token: str) -> list[Registered]:
        return [resource for resource in self.resources if resource.type == type_token]

    def one(self, type_token: str) -> Registered:
        found = self.of_type(type_token)
        assert len(found) == 1, [resource.name for resource in found]
        return found[0]

    def output(self, name: str) -> Any:
        return _sync_await(pulumi.Output.from_input(self.globals["outputs"][name]).future())

    def is_secret(self, value: Any) -> bool:
        return bool(_sync_await(pulumi.Output.from_input(value).is_secret()))


def run_program(config: dict[str, str] | None = None) -> ProgramRun:
    """Run infra/ with `config` over the defaults; return what it registered."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="prod", preview=False)
    pulumi.runtime.set_all_config({**DEFAULT_CONFIG, **(config or {})})
    holder: dict[str, dict[str, Any]] = {}
    protected: dict[str, bool] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        with recording_protection(protected):
            holder["globals"] = runpy.run_path(str(INFRA), run_name="__main__")

    program()
    return ProgramRun(resources=mocks.resources, globals=holder["globals"],
                      protected=protected)


@contextmanager
def recording_protection(protected: dict[str, bool]) -> Iterator[None]:
    """Record every custom resource's effective `protect` by name while the program runs."""
    original = pulumi.CustomResource.__init__

    def recording(self: pulumi.CustomResource, t: str, name: str, *args: Any,
                  **kwargs: Any) -> None:
        original(self, t, name, *args, **kwargs)
        protected[name] = bool(getattr(self, "_protect", False))

    pulumi.CustomResource.__init__ = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        pulumi.CustomResource.__init__ = original  # type: ignore[method-assign]


def bucket_policy_for_moto(bucket: str, prefix: str) -> str:
    """Return the program's bucket policy as moto's server can hold it beside real requests.

    moto evaluates a bucket policy's `Principal: "*"` statements on object requests with none
    of the request's condition keys, so every conditional Deny there denies every PUT and
    GET. Naming a principal (the account) makes moto pass over the statements, and leaves the
    document, conditions and all, for `backup-agent doctor` to read.
    """
    import json
    import sys

    if str(INFRA) not in sys.path:
        sys.path.insert(0, str(INFRA))
    from policy_documents import backup_bucket_policy

    document = backup_bucket_policy(f"arn:aws:s3:::{bucket}", prefix)
    for statement in document["Statement"]:
        statement["Principal"] = f"arn:aws:iam::{ACCOUNT}:root"
    return json.dumps(document)

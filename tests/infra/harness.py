"""Run the Pulumi program under mocks and record what it registers.

The program runs fresh each time (runpy, as `pulumi` itself runs `main: infra/`), with
`preview=False` so that `.apply` callbacks really run. Raw mock inputs are camelCase.
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

PROJECT = "dorami-db-backups"
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

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        holder["globals"] = runpy.run_path(str(INFRA), run_name="__main__")

    program()
    return ProgramRun(resources=mocks.resources, globals=holder["globals"])

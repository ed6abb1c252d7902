"""The architecture, held by tests: arrows point down, and heavy libraries load late.

See the README's "How the code is laid out".
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "backup_agent"
MACHINERY = ("boto3", "botocore", "s3transfer", "pyrage", "isal", "urllib", "subprocess",
             "rich")
# What a fresh interpreter must not have loaded (pathlib itself loads urllib.parse).
LOADED_MACHINERY = {"boto3", "botocore", "s3transfer", "pyrage", "isal", "urllib.request",
                    "subprocess", "rich"}
MAXIMUM_LINES = 300


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_s3_store_knows_boto3() -> None:
    allowed = {"s3.py", "s3_errors.py", "s3_download.py", "s3_upload.py"}
    for path in modules():
        uses = {name for name in imported(path) if name.split(".")[0] in ("boto3", "botocore")}
        if uses:
            assert path.parent.name == "storage" and path.name in allowed, (path, uses)


def test_no_action_imports_another_action() -> None:
    for path in (PACKAGE / "actions").glob("*.py"):
        others = {name for name in imported(path) if name.startswith("backup_agent.actions")}
        assert not others, (path.name, others)


def test_the_model_imports_no_machinery() -> None:
    for path in (PACKAGE / "model").glob("*.py"):
        heavy = {name for name in imported(path) if name.split(".")[0] in MACHINERY}
        outside = {name for name in imported(path) if name.startswith("backup_agent.")
                   and not name.startswith("backup_agent.model")}
        assert not heavy and not outside, (path.name, heavy, outside)


def test_no_module_is_over_300_lines() -> None:
    long = {path.relative_to(PACKAGE).as_posix(): lines for path in modules()
            if (lines := len(path.read_text().splitlines())) > MAXIMUM_LINES}
    assert not long


def loaded_by(code: str) -> set[str]:
    """Return the modules a fresh interpreter has loaded after running `code`."""
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               check=True)
    return set(completed.stdout.split())


@pytest.mark.parametrize("arguments", [["--version"], ["--help"], ["list", "--help"]])
def test_version_and_help_load_neither_boto3_nor_pyrage(arguments: list[str]) -> None:
    code = ("from backup_agent.cli import app\n"
            f"try:\n    app({arguments!r}, prog_name='backup-agent')\n"
            "except SystemExit:\n    pass")
    loaded = loaded_by(code)
    assert not loaded & {"boto3", "botocore", "pyrage", "s3transfer"}


def test_the_model_loads_without_machinery() -> None:
    loaded = loaded_by("import backup_agent.model.settings, backup_agent.model.backup, "
                       "backup_agent.model.manifest, backup_agent.model.naming, "
                       "backup_agent.model.progress, backup_agent.model.age_keys")
    assert not loaded & LOADED_MACHINERY, loaded & LOADED_MACHINERY

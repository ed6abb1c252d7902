"""The architecture, held by tests: arrows point down, and heavy libraries load late.

See the README's "How the code is laid out".
"""

from __future__ import annotations

import ast
import re
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

# The layers, top to bottom: a module imports only from layers below its own (or from its
# own package). `wal` and `physical` are rooms still to be built (issue 18): their absence
# is fine. execute.py sits at the bottom beside the model: anything but
# the model may use it. The package root (`backup_agent`: its __version__) is free to all.
LAYERS = ("cli", "actions", "restoring", "keys", "catalog", "wal", "physical", "storage",
          "postgres", "streams", "model")
RANK = {layer: rank for rank, layer in enumerate(LAYERS)} | {
    "__main__": -1, "execute": len(LAYERS) - 1.5}
# The machinery at the bottom is composed by the actions, never by itself (STYLE.md: "the
# action composes the chain"): none of these imports another, and the commands reach them
# only through an action.
MACHINERY_LAYERS = {"storage", "postgres", "streams"}
# Arrows known to point sideways, each with the reason it is still here (none now).
KNOWN_SIDEWAYS: set[tuple[str, str]] = set()


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


def arrows(path: Path) -> set[str]:
    """The package's own modules `path` imports, at any depth (`from backup_agent import
    execute` counts as `backup_agent.execute`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        assert not (isinstance(node, ast.ImportFrom) and node.level), (path, "relative import")
        if isinstance(node, ast.ImportFrom) and node.module == "backup_agent":
            names.update(f"backup_agent.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update(name for name in ([node.module] if isinstance(node, ast.ImportFrom)
                                           else [alias.name for alias in node.names])
                         if name and name.startswith("backup_agent."))
    return names


def layer_of(parts: tuple[str, ...]) -> str | None:
    """The layer of a module given as its path parts under backup_agent (None: the root)."""
    top = parts[0].removesuffix(".py")
    if len(parts) > 1 or top in RANK:
        return top
    return None if top in ("__init__", "__version__") else top


def wrong_arrows() -> set[tuple[str, str]]:
    found = set()
    for path in modules():
        source = path.relative_to(PACKAGE)
        here = layer_of(source.parts)
        for target in arrows(path):
            there = layer_of(tuple(target.split(".")[1:]))
            if here is None or there is None or there == here:
                continue
            upward = RANK[there] <= RANK[here]
            sideways = (there in MACHINERY_LAYERS
                        and (here in MACHINERY_LAYERS or here == "cli"))
            if upward or sideways:
                found.add((source.as_posix(), target))
    return found


def test_every_module_is_in_a_layer() -> None:
    for path in modules():
        layer = layer_of(path.relative_to(PACKAGE).parts)
        assert layer is None or layer in RANK, path


def test_arrows_point_down_the_layers_only() -> None:
    assert wrong_arrows() <= KNOWN_SIDEWAYS, wrong_arrows() - KNOWN_SIDEWAYS


def test_each_known_sideways_arrow_is_still_there_or_its_module_is_gone() -> None:
    stale = {(source, target) for source, target in KNOWN_SIDEWAYS
             if (PACKAGE / source).exists() and (source, target) not in wrong_arrows()}
    assert not stale, f"fixed: remove from KNOWN_SIDEWAYS {stale}"


@pytest.mark.parametrize(("source", "target", "wrong"), [
    ("catalog/backups.py", "backup_agent.keys.trust", True),  # up
    ("storage/local.py", "backup_agent.postgres.admin", True),  # sideways in the machinery
    ("cli/app.py", "backup_agent.storage.local", True),  # past the actions
    ("model/naming.py", "backup_agent.execute", True),  # the model uses nothing
    ("keys/trust.py", "backup_agent.catalog", False),
    ("postgres/dump.py", "backup_agent.execute", False),
    ("actions/restore.py", "backup_agent.restoring.proof", False),
    ("restoring/build.py", "backup_agent.actions.restore", True),  # up
])
def test_the_rule_itself(source: str, target: str, wrong: bool,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: [PACKAGE / source])
    monkeypatch.setattr(sys.modules[__name__], "arrows", lambda path: {target})
    assert bool(wrong_arrows()) is wrong


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


def test_the_readme_s_layout_names_every_module() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("## How the code is laid out")
    section = readme[start:readme.index("\n## ", start + 1)]
    package = Path(__file__).resolve().parents[2] / "backup_agent"
    unnamed = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
               if path.name not in ("__init__.py", "__main__.py")
               and not re.search(rf"\b{re.escape(path.stem)}\b", section)]
    assert not unnamed, f"the README's layout section does not name {unnamed}"

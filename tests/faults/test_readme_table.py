"""The README's "Failure behaviour" table says exactly what the fault tests assert."""

from __future__ import annotations

from pathlib import Path

from tests.faults.table import TABLE

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_rows() -> dict[str, tuple[str, int]]:
    text = README.read_text()
    section = text.split("## Failure behaviour", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[2].isdigit():
            rows[cells[0]] = (cells[1], int(cells[2]))
    return rows


def test_readme_table_matches_the_tested_behaviour() -> None:
    assert readme_rows() == {scenario: (row.outcome, row.exit_code)
                             for scenario, row in TABLE.items()}


def render_table() -> str:
    """The table as the README shows it (paste this after changing TABLE)."""
    lines = ["| Scenario | What the agent does | Exit code |", "|---|---|---|"]
    lines += [f"| {row.scenario} | {row.outcome} | {row.exit_code} |" for row in TABLE.values()]
    return "\n".join(lines)

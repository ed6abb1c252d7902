"""`prune --databases`: shows what it would drop, asks, and leaves young rollback copies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from testbed.postgres import PostgresServer
from tests.conftest import answer_no_on_a_terminal, run_agent


def leftovers(pg_server: PostgresServer, database: str) -> dict[str, str]:
    """Create an old and a fresh rollback copy and an old scratch database; return them."""
    now = datetime.now(UTC)
    names = {"old": f"{database}_pre_restore_{now - timedelta(days=3):%Y%m%d_%H%M%S}",
             "young": f"{database}_pre_restore_{now - timedelta(seconds=10):%Y%m%d_%H%M%S}",
             "scratch": f"{database}_verify_{now - timedelta(days=2):%Y%m%d_%H%M%S}"}
    for name in names.values():
        pg_server.create_database(name)
    return names


def test_prune_databases_needs_yes_without_a_terminal_and_keeps_young_copies(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    names = leftovers(pg_server, database)
    refused = run_agent(["prune", "--databases"], agent_env)
    assert refused.returncode == 2, refused.stderr
    assert "there is no terminal to ask on: pass --yes" in refused.stderr
    assert names["old"] in refused.stderr and names["young"] not in refused.stderr
    assert set(names.values()) <= pg_server.database_names()

    planned = run_agent(["prune", "--databases", "--dry-run", "--json"], agent_env)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["databases"] == sorted([names["old"], names["scratch"]])
    assert plan["databases_kept"] == [names["young"]]
    text = run_agent(["prune", "--databases", "--dry-run"], agent_env)
    assert "would drop 2 database(s)" in text.stdout
    assert "left 1 database(s) younger than 24h" in text.stdout
    assert set(names.values()) <= pg_server.database_names()

    dropped = run_agent(["prune", "--databases", "--yes", "--json"], agent_env)
    assert dropped.returncode == 0, dropped.stderr
    assert json.loads(dropped.stdout)["databases_kept"] == [names["young"]]
    remaining = pg_server.database_names()
    assert names["young"] in remaining and database in remaining
    assert names["old"] not in remaining and names["scratch"] not in remaining

    named = run_agent(["prune", "--drop", names["young"], "--yes"], agent_env)
    assert named.returncode == 0, named.stderr
    assert names["young"] not in pg_server.database_names()

    stranger = run_agent(["prune", "--drop", database, "--yes"], agent_env)
    assert stranger.returncode == 2
    assert f"{database} is not a database a restore or restore test left" in stranger.stderr
    assert database in pg_server.database_names()


def test_prune_databases_asks_on_a_terminal_and_no_changes_nothing(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    names = leftovers(pg_server, database)
    answered, code, text = answer_no_on_a_terminal(["prune", "--databases"], agent_env)
    assert answered, text
    assert code == 0, text
    assert f"  {names['old']} (3d old)" in text and "Drop 2 database(s)?" in text
    assert "prune cancelled: nothing was deleted or dropped" in text
    assert set(names.values()) <= pg_server.database_names()

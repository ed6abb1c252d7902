"""`prune --databases` in process, against the real server: it finds every database a restore
or restore test left, for a name of 63 bytes and for one in a multi-byte script."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup_agent.actions.prune import run_prune
from backup_agent.model.database_names import IDENTIFIER_LIMIT, KINDS, derived_name
from backup_agent.model.naming import STAMP_FORMAT
from backup_agent.model.settings import PostgresSettings, S3Settings, Settings
from testbed.postgres import PostgresServer

NOW = datetime.now(UTC)


@pytest.fixture(params=["p" * IDENTIFIER_LIMIT, "é" * 31 + "p"], ids=["63-ascii", "63-utf8"])
def long_database(request: pytest.FixtureRequest, pg_server: PostgresServer) -> Iterator[str]:
    name = str(request.param)
    pg_server.create_database(name)
    yield name
    pg_server.drop_database(name)


def test_prune_finds_every_leftover_of_a_long_database(pg_server: PostgresServer,
                                                       long_database: str,
                                                       tmp_path: Path) -> None:
    stamps = [f"{NOW - timedelta(days=days):{STAMP_FORMAT}}" for days in (2, 3)]
    made = sorted(derived_name(long_database, f"_{kind}_{stamp}")
                  for kind in KINDS for stamp in stamps)
    young = derived_name(long_database, f"_pre_restore_{NOW:{STAMP_FORMAT}}")
    for name in [*made, young]:
        pg_server.create_database(name)
    tmp_path.chmod(0o700)
    settings = Settings(postgres=PostgresSettings(
        database=long_database, user=pg_server.user, password=pg_server.password,
        host=pg_server.host, port=pg_server.port, bin_directory=pg_server.bin_directory),
        s3=S3Settings(), backup_directory=tmp_path)
    try:
        planned = run_prune(settings, dry_run=True, databases=True, now=NOW)
        assert planned.databases is not None
        assert sorted(leftover.name for leftover in planned.databases.drop) == made
        assert [leftover.name for leftover in planned.databases.young] == [young]

        run_prune(settings, dry_run=False, databases=True, now=NOW)
        remaining = pg_server.database_names()
        assert not set(made) & remaining
        assert {long_database, young} <= remaining
    finally:
        for name in [*made, young]:
            pg_server.drop_database(name)

"""pg_dump into a composed writer, and a stream fed into psql, against the real server.

The layers below the actions, without the binary: what `backup` and `restore` are built on.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres import admin as admin_module
from backup_agent.postgres.admin import DatabaseAdmin
from backup_agent.postgres.dump import dump_database
from backup_agent.postgres.session import SqlSession
from backup_agent.restoring.build import BUILDER_PREFIX, Request, build
from backup_agent.restoring.proof import Proof, _Recording
from backup_agent.restoring.rebuild import Rebuild
from backup_agent.streams.gzip import compressing
from backup_agent.streams.hashing import HashingWriter
from backup_agent.streams.statements import StatementCheck
from backup_agent.streams.verify import verify_stream
from testbed.postgres import PostgresServer
from testbed.sample_data import fingerprint


def settings_for(server: PostgresServer, database: str) -> PostgresSettings:
    return PostgresSettings(database=database, user=server.user, password=server.password,
                            host=server.host, port=server.port,
                            bin_directory=server.bin_directory)


def proven_bytes(stored: bytes) -> Proof:
    """The proving pass over `stored`, as restoring/proof.py runs it for a local file."""
    stream = io.BytesIO(stored)
    recording = _Recording(stream)
    verdict = verify_stream(recording, expected_sha256=hashlib.sha256(stored).hexdigest(),
                            check=StatementCheck())
    assert verdict.good, verdict.problems()
    return Proof(verdict=verdict, stream=stream, digests=recording.finish())


def builders(server: PostgresServer) -> list[str]:
    return server.psql("postgres", "SELECT rolname FROM pg_roles WHERE rolname LIKE "
                       f"'{BUILDER_PREFIX}%';").split()


def test_a_dump_streams_through_the_chain_and_is_built_back(pg_server: PostgresServer,
                                                          database: str) -> None:
    settings = settings_for(pg_server, database)
    stored = io.BytesIO()
    hashing = HashingWriter(stored)
    with compressing(hashing) as compressed:
        dump = dump_database(settings, compressed)
    assert dump.row_counts and dump.uncompressed_bytes > stored.tell() > 0
    assert hashing.size == len(stored.getvalue())
    copy = f"{database}_copy"
    with DatabaseAdmin(settings) as admin:
        rebuild = Rebuild(admin, None, server_major=admin.server_major(), no_owner=False)
        try:
            build(settings, rebuild, proven_bytes(stored.getvalue()),
                  Request(name=copy, target=copy, trusted=False, no_owner=False),
                  identities=None)
            for table, rows in dump.row_counts.items():
                assert pg_server.psql(copy, f"SELECT count(*) FROM {table};").strip() == \
                    str(rows)
            assert fingerprint(pg_server, copy) == fingerprint(pg_server, database)
            assert not builders(pg_server)
        finally:
            admin.drop(copy)


def test_a_missing_database_is_a_database_error(pg_server: PostgresServer,
                                                 tmp_path: Path) -> None:
    settings = settings_for(pg_server, "no_such_database")
    with pytest.raises(DatabaseError, match="no_such_database"), \
            (tmp_path / "out").open("wb") as handle:
        dump_database(settings, handle)


PLANTED = """
    CREATE FUNCTION public.pg_total_relation_size(oid) RETURNS bigint LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'planted size ran'; END $$;
    CREATE FUNCTION public.unnest(oid[]) RETURNS SETOF oid LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'planted unnest ran'; END $$;
    CREATE FUNCTION public.format(text, name, name) RETURNS text LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'planted format ran'; END $$;
"""
NEVER_ANALYZED = """
    SELECT n.nspname || '.' || c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
    WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND s.last_analyze IS NULL
      AND c.oid <> 'pg_statistic'::regclass;  -- which ANALYZE itself never analyzes
"""


def counted_sessions(monkeypatch: pytest.MonkeyPatch, *,
                     refuse_second_to: str | None = None) -> list[str]:
    """Record the database of every session admin.py opens; optionally refuse the second
    one to `refuse_second_to` as a server out of connections would."""
    sessions: list[str] = []

    def counted(settings: PostgresSettings, name: str) -> SqlSession:
        sessions.append(name)
        if name == refuse_second_to and sessions.count(name) == 2:
            raise DatabaseError("too many connections for role")
        return SqlSession(settings, name)

    monkeypatch.setattr(admin_module, "SqlSession", counted)
    return sessions


@pytest.mark.parametrize("second_session", ["connects", "cannot connect"])
def test_analyze_in_two_sessions_reaches_every_table_a_plain_analyze_would(
        pg_server: PostgresServer, database: str, second_session: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pg_server.psql(database, PLANTED + """
        CREATE TABLE "odd ""name""
        with a line" (x int);
        INSERT INTO "odd ""name""
        with a line" SELECT generate_series(1, 100);
        CREATE TABLE measured (at date, v int) PARTITION BY RANGE (at);
        CREATE TABLE measured_2026 PARTITION OF measured
            FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO measured SELECT '2026-05-01', g FROM generate_series(1, 1000) g;
        CREATE MATERIALIZED VIEW totals AS SELECT sum(v) FROM measured;
    """)
    sessions = counted_sessions(monkeypatch, refuse_second_to=(
        database if second_session == "cannot connect" else None))
    monkeypatch.setattr(admin_module, "SPLIT_FROM_BYTES", 0)  # these tables are tiny
    settings = settings_for(pg_server, database)
    with DatabaseAdmin(settings) as admin:
        admin.analyze(settings, database)
    # The split ran (not the one-table fallback); the admin's own session is the other.
    assert sessions.count(database) == 2
    # Catalogs included, as with a plain ANALYZE; nothing the database planted was called.
    assert pg_server.psql(database, NEVER_ANALYZED).strip() == ""
    # The partitioned table's own statistics (over all its partitions) were gathered too.
    assert pg_server.psql(database, "SELECT count(*) > 0 FROM pg_stats "
                                    "WHERE tablename = 'measured' AND inherited;").strip() == "t"


def test_a_small_database_is_analyzed_in_one_session(pg_server: PostgresServer, database: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = counted_sessions(monkeypatch)
    settings = settings_for(pg_server, database)
    with DatabaseAdmin(settings) as admin:
        admin.analyze(settings, database)
    assert sessions.count(database) == 1
    assert pg_server.psql(database, NEVER_ANALYZED).strip() == ""

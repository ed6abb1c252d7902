"""The restore's sessions against a real server: one statement per Parse, COPY included."""

from __future__ import annotations

import pytest

from backup_agent.restoring.sessions import Login, StatementFailed, opened
from testbed.postgres import PostgresServer
from tests.integration.test_postgres import settings_for

MARKER = "CREATE TABLE public.ran (x int); CREATE TABLE public.target (x int);"


@pytest.fixture
def session_database(pg_server: PostgresServer, database: str) -> str:
    pg_server.psql(database, MARKER)
    return database


def ran(server: PostgresServer, database: str) -> bool:
    return server.psql(database, "SELECT count(*) FROM public.ran;").strip() != "0"


@pytest.mark.parametrize("text", [
    b"INSERT INTO public.ran VALUES (1); COPY public.target FROM stdin;",
    b"COPY public.target FROM stdin; INSERT INTO public.ran VALUES (1);",
])
def test_a_copy_holding_a_second_statement_is_refused_by_the_server(
        pg_server: PostgresServer, session_database: str, text: bytes) -> None:
    settings = settings_for(pg_server, session_database)
    with opened("builder", settings, session_database,
                Login(settings.user, settings.password)) as session, \
            pytest.raises(StatementFailed, match="multiple commands"):
        session.copy_start(text, 7)
    assert not ran(pg_server, session_database)


def test_copy_data_goes_through_in_pieces_and_a_bad_row_names_the_line(
        pg_server: PostgresServer, session_database: str) -> None:
    settings = settings_for(pg_server, session_database)
    rows = b"".join(b"%d\n" % number for number in range(200_000))  # > one 128 KiB piece
    with opened("builder", settings, session_database,
                Login(settings.user, settings.password)) as session:
        session.copy_start(b"COPY public.target (x) FROM stdin;", 3)
        session.copy_write(rows[:700_000], 3)
        session.copy_write(rows[700_000:], 3)
        session.copy_finish(3)
        session.copy_start(b"COPY public.target (x) FROM stdin;", 9)
        session.copy_write(b"not a number\n", 9)
        with pytest.raises(StatementFailed) as failed:
            session.copy_finish(9)
        assert failed.value.line == 9 and failed.value.sqlstate == "22P02"
        session.run(b"SELECT 1;", 10)  # the session goes on after a failed COPY
    counted = pg_server.psql(session_database, "SELECT count(*), sum(x) FROM public.target;")
    assert counted.strip() == f"200000|{sum(range(200_000))}"

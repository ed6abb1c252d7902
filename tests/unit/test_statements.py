"""The statement check: what pg_dump writes passes, anything else is refused by line.

Genuine dumps of a rich schema by pg_dump 16 and 18 are checked in tests/compat; here each
attack is spliced into a small dump, and psql's lexing rules are pinned one by one.
"""

from __future__ import annotations

import pytest

from backup_agent.streams.statements import StatementCheck

HEAD = b"""--
-- PostgreSQL database dump
--

\\restrict abcDEF123

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET default_tablespace = '';

CREATE TABLE public.t (
    id integer NOT NULL,
    note text DEFAULT 'it''s; \\ fine'::text
);

ALTER TABLE public.t OWNER TO app;

COPY public.t (id, note) FROM stdin;
1\tplain
2\t\\\\! rm -rf /
3\t\\\\.
4\tDROP DATABASE shop; \\\\connect x
\\.

SELECT pg_catalog.setval('public.t_id_seq', 4, true);
"""
TAIL = b"""
GRANT SELECT ON TABLE public.t TO reader;

\\unrestrict abcDEF123

--
-- PostgreSQL database dump complete
--

"""


def check(sql: bytes, chunk: int = 1 << 20) -> StatementCheck:
    result = StatementCheck()
    for start in range(0, len(sql), chunk):
        result.feed(sql[start:start + chunk])
    result.finish()
    return result


@pytest.mark.parametrize("chunk", [1 << 20, 1, 2, 3, 5, 64])
def test_a_genuine_dump_passes_whatever_the_chunks(chunk: int) -> None:
    result = check(HEAD + TAIL, chunk)
    assert result.problem is None
    assert result.restrict_lines == [5, len((HEAD + TAIL).splitlines()) - 5]


ATTACKS = [
    (b"\\! touch /tmp/pwned", "meta-command"),
    (b"\\o /tmp/pwned", "meta-command"),
    (b"\\connect shop", "meta-command"),
    (b"\\copy t to '/tmp/x'", "meta-command"),
    (b"\\set ON_ERROR_STOP 0", "meta-command"),
    (b"\\i /etc/passwd", "meta-command"),
    (b"SELECT 1; \\! id", "SELECT"),
    (b"CREATE TABLE x (a int) \\gexec", "meta-command"),
    (b"DROP DATABASE shop WITH (FORCE);", "DROP"),
    (b"DROP TABLE public.t;", "DROP"),
    (b"COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned';", "COPY"),
    (b"COPY public.t FROM PROGRAM 'id';", "COPY"),
    (b"COPY public.t FROM '/etc/passwd';", "COPY"),
    (b"COPY public.t TO stdout;", "COPY"),
    (b"COPY public.t FROM stdin (FORMAT csv);", "COPY"),
    (b"ALTER SYSTEM SET archive_command = 'touch /tmp/pwned';", "ALTER SYSTEM"),
    (b"CREATE ROLE evil SUPERUSER LOGIN PASSWORD 'x';", "CREATE ROLE"),
    (b"ALTER ROLE app SUPERUSER;", "ALTER ROLE"),
    (b"ALTER USER app PASSWORD 'x';", "ALTER USER"),
    (b"GRANT pg_execute_server_program TO app;", "without ON"),
    (b"GRANT ALL ON DATABASE shop TO PUBLIC;", "database"),
    (b"ALTER DATABASE shop RENAME TO gone;", "ALTER DATABASE"),
    (b"COMMENT ON DATABASE shop IS 'x';", "database"),
    (b"DO $$ BEGIN PERFORM pg_sleep(1); END $$;", "DO"),
    (b"LOAD 'evil';", "LOAD"),
    (b"CALL evil();", "CALL"),
    (b"SELECT pg_read_file('/etc/passwd');", "SELECT"),
    (b"SELECT pg_catalog.setval('s', (SELECT 1), true);", "SELECT"),
    (b"SELECT pg_catalog.set_config('role', 'evil', false);", "SELECT"),
    (b"SET ROLE evil;", "SET"),
    (b"SET session_replication_role = replica;", "SET"),
    (b"SET standard_conforming_strings = off;", "standard_conforming_strings"),
    (b"SET client_encoding = 'SJIS';", "encoding"),
    (b"SET search_path = public, pg_catalog;", "SET"),  # pg_dump >= 10.3 never writes it
    (b"INSERT INTO public.t VALUES (9, 'x');", "INSERT"),
    (b"TRUNCATE public.t;", "TRUNCATE"),
    (b"CREATE SUBSCRIPTION s CONNECTION 'host=evil' PUBLICATION p;", "connect"),
    (b"CHECKPOINT;", "CHECKPOINT"),
    (b"RESET ALL;", "RESET"),
    (b"SELECT :'DBNAME';", "variable"),
    (b"COPY public.t (id) FROM stdin; SELECT 1;", "after a COPY"),
    (b"CREATE TABLE y (a int); DROP TABLE public.t;", "DROP"),
    (b"SELECT pg_catalog.setval('s', 1, true) \\g /tmp/out", "meta-command"),
    # Found in review: each of these ran its payload before it was refused.
    (b"-- x\rDROP DATABASE shop;", "DROP"),  # a bare CR ends a -- comment
    (b"COMMENT ON SCHEMA public IS 'x' \x00';", "NUL"),
    (b'SET client_encoding = "SJIS";', "encoding"),
    (b"SET client_encoding = E'SJIS';", "E''"),
    (b"SET client_encoding = 'SHIFT_JIS_2004';", "encoding"),
    (b"SET client_encoding = 'WINDOWS932';", "encoding"),
    (b"COPY pg_catalog.pg_authid (oid, rolname) FROM stdin;", "system catalogs"),
    (b"COPY pg_authid (oid, rolname) FROM stdin;", "COPY"),
    (b"CREATE TABLE public.x AS SELECT public.evil();", "AS runs a query"),
    (b"CREATE FOREIGN TABLE public.ft (x text) SERVER fs OPTIONS (program 'touch /x');",
     "program"),
    (b"CREATE SUBSCRIPTION s CONNECTION 'host=x application_name=''connect = false''' "
     b"PUBLICATION p WITH (enabled = false);", "connect"),
]


@pytest.mark.parametrize(("line", "reason"), ATTACKS, ids=[a[0][:30].decode() for a in ATTACKS])
def test_each_attack_is_refused_at_its_line(line: bytes, reason: str) -> None:
    sql = HEAD + line + b"\n" + TAIL
    result = check(sql)
    assert result.problem is not None
    line_number = HEAD.count(b"\n") + 1
    assert result.problem.startswith(f"line {line_number}:"), result.problem
    assert reason.lower() in result.problem.lower(), result.problem


@pytest.mark.parametrize("hidden", [
    # psql ends a statement only outside parentheses: the DROP is inside the first one.
    b"CREATE VIEW v AS SELECT (1;\nDROP DATABASE shop;\n);",
    # ... and, in CREATE FUNCTION, only outside BEGIN ATOMIC ... END.
    b"CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\n END;",
    b"CREATE OR REPLACE PROCEDURE p() LANGUAGE sql\nBEGIN ATOMIC\n SELECT CASE WHEN true "
    b"THEN 1 END;\n DELETE FROM t;\nEND;",
    # Quotes of every kind hide semicolons and backslashes from psql and from us alike.
    b"COMMENT ON TABLE public.t IS 'a; \\! b';",
    b'COMMENT ON COLUMN public.t."we;ird\\"" \\! name" IS \'x\';',
    b"CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $body$\n\\! id\nBEGIN "
    b"RETURN $$;$$; END\n$body$;",
    b"CREATE TABLE w (a int); -- a comment \\! id ; DROP TABLE t",
])
def test_what_psql_keeps_in_one_statement_passes(hidden: bytes) -> None:
    assert check(HEAD + hidden + b"\n" + TAIL, 3).problem is None


def test_unfinished_input_is_refused() -> None:
    for tail in (b"CREATE TABLE q (a int", b"COMMENT ON TABLE t IS 'open", b"COPY public.t "
                 b"(id) FROM stdin;\n1\tx\n"):
        result = check(HEAD + tail)
        assert result.problem is not None and "end" in result.problem, tail


def test_copy_data_ends_only_at_a_line_that_is_exactly_backslash_dot() -> None:
    sql = HEAD + b"COPY public.t (id) FROM stdin;\n\\.x\n \\.\n\\! id\n\\.\n" + TAIL
    assert check(sql, 2).problem is None  # all four lines are data
    sql = HEAD + b"COPY public.t (id) FROM stdin;\n1\n\\.\r\n\\! id\n" + TAIL
    result = check(sql, 2)
    assert result.problem is not None and "meta-command" in result.problem


class Collected:
    """A StatementSink that keeps what it is handed, COPY data joined per COPY."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []

    def statement(self, text: bytes, parts: list[str], line: int) -> None:
        self.items.append(("statement", text))

    def copy_data(self, data: bytes) -> None:
        if self.items and self.items[-1][0] == "data":
            self.items[-1] = ("data", self.items[-1][1] + data)
        else:
            self.items.append(("data", data))

    def copy_end(self) -> None:
        self.items.append(("end", b""))


def handed_over(sql: bytes, chunk: int) -> tuple[StatementCheck, list[tuple[str, bytes]]]:
    sink = Collected()
    result = StatementCheck(sink)
    for start in range(0, len(sql), chunk):
        result.feed(sql[start:start + chunk])
    result.finish()
    return result, sink.items


@pytest.mark.parametrize("chunk", [1 << 20, 1, 7])
def test_the_dumps_own_restrict_lines_are_never_handed_over(chunk: int) -> None:
    result, items = handed_over(HEAD + TAIL, chunk)
    assert result.problem is None and result.restrict_lines
    assert not any(b"restrict" in text for _kind, text in items)


@pytest.mark.parametrize("chunk", [1 << 20, 1, 3, 7])
def test_each_statement_is_handed_over_whole_as_it_was_judged(chunk: int) -> None:
    sql = HEAD + (b"ALTER TABLE public.t OWNER TO postgres; COMMENT ON SCHEMA public IS ';\n"
                  b"x';\nCOPY public.t (a) FROM stdin;\nALTER TABLE x OWNER TO y;\n\\.\n"
                  b"ALTER SCHEMA s OWNER TO app;\n") + TAIL
    result, items = handed_over(sql, chunk)
    assert result.problem is None
    assert ("statement", b"COMMENT ON SCHEMA public IS ';\nx';") in items
    assert ("statement", b"ALTER TABLE public.t OWNER TO postgres;") in items
    at = items.index(("statement", b"COPY public.t (a) FROM stdin;"))
    # COPY data is data, never a statement, and never its `\.` line.
    assert items[at + 1:at + 4] == [("data", b"ALTER TABLE x OWNER TO y;\n"), ("end", b""),
                                    ("statement", b"ALTER SCHEMA s OWNER TO app;")]


@pytest.mark.parametrize("text", [b"COMMENT ON SCHEMA public IS E'x';",
                                  b"COMMENT ON TABLE public.t IS E'it\\'s; \\\\! not a command';",
                                  b"COMMENT ON TABLE public.t IS U&'d\\0061t\\+000061; x';",
                                  b"CREATE TABLE z (a int) /* nested /* comment; \\! id */ "
                                  b"still; */;",
                                  b"COMMENT ON SCHEMA public IS U&'x';",
                                  b"CREATE TABLE public.t (a int -- note\n);",
                                  b"CREATE TABLE public.t (a /* note */ int);"])
def test_comments_and_escape_strings_inside_a_statement_are_refused(text: bytes) -> None:
    result, items = handed_over(HEAD + text + b"\n" + TAIL, 5)
    assert result.problem is not None
    assert not any(text[:-1] in item for _kind, item in items)


def test_a_literal_continued_on_the_next_line_is_refused() -> None:
    # psql would continue E'x' with the next literal, escapes and all; the backslash then
    # hides the quote that ends it for a lexer that reads the second literal as plain.
    sql = HEAD + b"COMMENT ON SCHEMA public IS 'x'\n'\\' ' ; SELECT 1; -- ';\n" + TAIL
    result = check(sql)
    assert result.problem is not None and "side by side" in result.problem


def test_a_column_named_program_is_no_program_option() -> None:
    sql = HEAD + b"CREATE TABLE public.tv (program text, show integer);\n" + TAIL
    assert check(sql).problem is None

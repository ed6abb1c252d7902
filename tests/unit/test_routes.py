"""Which session runs each statement: a pure function of the splitter's tokens."""

from __future__ import annotations

import pytest

from backup_agent.restoring.routes import Route, route
from backup_agent.streams.statements import StatementCheck


class _Collect:
    def __init__(self) -> None:
        self.parts: list[list[str]] = []

    def statement(self, text: bytes, parts: list[str], line: int) -> None:
        self.parts.append(parts)

    def copy_data(self, data: bytes) -> None:
        pass

    def copy_end(self) -> None:
        pass


def parts_of(statement: bytes) -> list[str]:
    sink = _Collect()
    check = StatementCheck(sink)
    check.feed(statement + b"\n")
    assert check.problem is None, check.problem
    [parts] = sink.parts
    return parts


@pytest.mark.parametrize(("statement", "expected"), [
    (b"CREATE TABLE public.t (id integer CHECK (public.f(id)));", Route.BUILDER),
    (b"CREATE FUNCTION public.f(integer) RETURNS boolean LANGUAGE sql AS $$SELECT true$$;",
     Route.BUILDER),
    (b"CREATE FUNCTION public.f() RETURNS integer LANGUAGE c AS 'lib', 'f';",
     Route.TRUSTED_ADMIN),
    (b"CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;", Route.ADMIN),
    (b"CREATE CAST (public.a AS public.b) WITH FUNCTION public.f(public.a);",
     Route.TRUSTED_ADMIN),
    (b"CREATE OPERATOR CLASS public.c FOR TYPE public.a USING btree AS OPERATOR 1 <;",
     Route.TRUSTED_ADMIN),
    (b"CREATE TEXT SEARCH TEMPLATE public.t (LEXIZE = dsimple_lexize);", Route.TRUSTED_ADMIN),
    (b"CREATE TEXT SEARCH PARSER public.p (START = prsd_start, GETTOKEN = prsd_nexttoken, "
     b"END = prsd_end, LEXTYPES = prsd_lextype);", Route.TRUSTED_ADMIN),
    (b"CREATE ACCESS METHOD a TYPE TABLE HANDLER heap_tableam_handler;", Route.TRUSTED_ADMIN),
    (b"CREATE USER MAPPING FOR PUBLIC SERVER s;", Route.TRUSTED_ADMIN),
    (b"CREATE FOREIGN TABLE public.f (x text) SERVER s;", Route.TRUSTED_ADMIN),
    (b"CREATE SCHEMA app;", Route.SCHEMA),
    (b"ALTER TABLE public.t OWNER TO app;", Route.OWNERSHIP),
    (b"GRANT SELECT ON TABLE public.t TO app;", Route.PRIVILEGE),
    (b"CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION public.f();",
     Route.EVENT_TRIGGER),
])
def test_each_kind_of_statement_goes_to_its_session(statement: bytes, expected: Route) -> None:
    assert route(parts_of(statement)) is expected

"""Pure pieces of restore and verify."""

from __future__ import annotations

import gzip
import hashlib
import io

import pytest

from backup_agent.actions.verify import compare_row_counts
from backup_agent.model.database_names import derived_name
from backup_agent.model.naming import parse_checksum_file
from backup_agent.postgres.admin import (
    analyze_sql,
    balanced,
    quote_identifier,
    quote_literal,
)
from backup_agent.postgres.clients import understands_restrict
from backup_agent.streams.statements import StatementCheck
from backup_agent.streams.verify import verify_stream

DUMP = (b"-- Dumped by pg_dump version 18.6\nCREATE TABLE t (x text);\n"
        b"ALTER TABLE public.t OWNER TO app;\n"
        b"COPY public.t (x) FROM stdin;\nALTER TABLE x OWNER TO y;\n\\.\n"
        b"-- PostgreSQL database dump complete\n")


@pytest.mark.parametrize(("version", "expected"), [
    ((18, 0), True), ((17, 6), True), ((17, 5), False), ((16, 10), True), ((16, 9), False),
    ((15, 14), True), ((13, 21), False), ((12, 22), False)])
def test_which_psql_understands_restrict(version: tuple[int, int], expected: bool) -> None:
    assert understands_restrict(*version) is expected


def test_row_count_comparison_names_each_difference() -> None:
    assert compare_row_counts({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 0}) == [
        "b: 5 rows restored, manifest says 2",
        "c: missing after restore (manifest: 3 rows)",
        "d: not in the manifest (0 rows restored)"]


def test_derived_names_fit_postgres_limit() -> None:
    long = "x" * 70
    name = derived_name(long, "_restore_20260228_110000")
    assert len(name.encode()) == 63 and name.endswith("_restore_20260228_110000")
    assert derived_name("app", "_verify_1") == "app_verify_1"


def test_quoting() -> None:
    assert quote_identifier('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"


def test_checksum_files_are_read_like_sha256sum() -> None:
    digest = "a" * 64
    assert parse_checksum_file(f"{digest}  db.sql.gz\n", "db.sql.gz") == digest
    assert parse_checksum_file(f"{digest} *db.sql.gz\n", "db.sql.gz") == digest
    assert parse_checksum_file(f"{digest}  other.sql.gz\n", "db.sql.gz") is None
    assert parse_checksum_file("garbage", "db.sql.gz") is None


def test_verify_stream_judges_each_kind_of_damage() -> None:
    data = gzip.compress(DUMP)
    good = hashlib.sha256(data).hexdigest()
    fed: list[bytes] = []
    verdict = verify_stream(io.BytesIO(data), expected_sha256=good, sink=fed.append)
    assert verdict.good and b"".join(fed) == DUMP
    truncated = verify_stream(io.BytesIO(data[:-9]), expected_sha256=good)
    assert not truncated.gzip_complete and not truncated.checksum_matches
    not_gzip = verify_stream(io.BytesIO(b"plain text"), expected_sha256=None)
    assert not_gzip.problems()[0] == "no .sha256 checksum to compare with"
    assert not not_gzip.gzip_complete
    empty = verify_stream(io.BytesIO(b""), expected_sha256=None)
    assert not empty.gzip_complete
    unfinished = gzip.compress(DUMP.replace(b"dump complete", b"dump"))
    verdict = verify_stream(io.BytesIO(unfinished),
                            expected_sha256=hashlib.sha256(unfinished).hexdigest())
    assert verdict.gzip_complete and not verdict.dump_complete
    concatenated = gzip.compress(DUMP[:40]) + gzip.compress(DUMP[40:])
    assert verify_stream(io.BytesIO(concatenated),
                         expected_sha256=hashlib.sha256(concatenated).hexdigest()).good


def test_a_huge_copy_line_streams_without_being_held() -> None:
    huge = b"x" * (10 * 1024 * 1024)
    check = StatementCheck()
    check.feed(b"COPY public.t (x) FROM stdin;\n")
    for start in range(0, len(huge), 100_000):
        check.feed(huge[start:start + 100_000])
        assert len(check._pending) <= 200_000  # never the whole line
    check.feed(b"\n\\.\n")
    check.finish()
    assert check.problem is None


def test_tables_are_dealt_to_the_analyze_sessions_largest_first() -> None:
    sizes = [(100, "1"), (60, "2"), (50, "3"), (10, "4"), (0, "5")]
    assert balanced(sizes, 2) == [["1", "4", "5"], ["2", "3"]]  # 110 against 110
    assert balanced([(5, "9")], 2) == [["9"], []]
    statement = analyze_sql(["16384", "16390"])
    assert "ANY ('{16384,16390}'::oid[])" in statement
    assert "format('%I.%I', n.nspname, c.relname)" in statement  # the server quotes
    assert statement.endswith("\\gexec") and "regclass" not in statement  # no cast to text
    with pytest.raises(ValueError):
        analyze_sql(["1); DROP TABLE x; --"])  # only numbers ever reach the statement

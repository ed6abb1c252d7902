"""`backup-agent drill` against what production's own roles put in the archive.

The drill restores the whole cluster on the runner (where the age key and the bucket's read
key are) and checks it as the restored cluster's superuser. What an application role (not
a superuser) made in production must not run as that superuser there.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.postgres import running_server
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT
from tests.pitr_archive import BucketArchive, drill_archive

# Where the application's function writes when it runs as a superuser (a server-side COPY,
# as the server's operating system user: it could as well run a program).
ESCAPED = Path("/tmp") / f"backup-agent-drill-escaped-{secrets.token_hex(6)}"

# amcheck installed by a DBA with the default search_path lands in `public`, which the
# database's owner (the application) may write in. pg_amcheck calls
# `public.bt_index_check(index := c.oid, ...)`: a function of the application's taking
# `oid` matches exactly, the extension's (`regclass`) only by a cast, so PostgreSQL picks
# the application's, and runs it as pg_amcheck's user.
_APPLICATION = f"""
SET ROLE app;
CREATE TABLE orders (id int PRIMARY KEY, note text);
INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 100) g;
CREATE FUNCTION public.bt_index_check(index oid, heapallindexed boolean DEFAULT false,
                                      checkunique boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'COPY (SELECT current_user) TO ''{ESCAPED}''';
  END IF;
END $$;
CREATE FUNCTION public.verify_heapam(relation oid, on_error_stop boolean DEFAULT false,
    check_toast boolean DEFAULT false, skip text DEFAULT 'none',
    startblock bigint DEFAULT NULL, endblock bigint DEFAULT NULL,
    OUT blkno bigint, OUT offnum integer, OUT attnum integer, OUT msg text)
RETURNS SETOF record LANGUAGE sql AS 'SELECT NULL::bigint, NULL::int, NULL::int, NULL::text
  WHERE false';
"""


# A transaction the application prepared (two-phase commit) and never finished: it survives
# recovery with its locks, here ACCESS EXCLUSIVE on a table pg_amcheck must read.
_PREPARED = """
SET ROLE app;
CREATE TABLE parked (id int PRIMARY KEY);
BEGIN; LOCK TABLE parked IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'parked';
"""
DRILL_SECONDS = 150  # one target takes about 15 s here


@pytest.fixture(scope="module")
def archive(s3_endpoint: S3Endpoint) -> Iterator[BucketArchive]:
    with running_server() as server:
        server.psql("postgres", "CREATE ROLE app LOGIN; CREATE DATABASE app OWNER app; "
                                "ALTER SYSTEM SET max_prepared_transactions = 5;")
        server.restart()
        server.psql("app", "CREATE EXTENSION amcheck;")  # a DBA's, into public
        server.psql("app", _APPLICATION + _PREPARED)
        yield drill_archive(server, s3_endpoint, "drill-attacks")
    ESCAPED.unlink(missing_ok=True)


def _drill(archive: BucketArchive) -> subprocess.CompletedProcess[str]:
    user = archive.cluster.server.system_user
    try:
        return subprocess.run([str(AGENT), "drill", "--json", "--targets", "1",
                               *(["--run-as", user] if user else [])],
                              env=archive.environment, capture_output=True, text=True,
                              timeout=DRILL_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the drill did not end within {DRILL_SECONDS} s")


def test_an_application_s_function_in_amcheck_s_schema_never_runs_as_the_superuser(
        archive: BucketArchive) -> None:
    result = _drill(archive)
    assert not ESCAPED.exists(), (
        f"the application's bt_index_check ran as {ESCAPED.read_text().strip()!r} during "
        "the drill's pg_amcheck")
    assert result.returncode == 0, result.stderr
    [target] = json.loads(result.stdout)["drill"]["targets"]
    assert target["amcheck"] == "passed"


def test_a_transaction_left_prepared_does_not_hang_the_drill_s_amcheck(
        archive: BucketArchive) -> None:
    result = _drill(archive)
    assert result.returncode == 0, result.stderr
    [target] = json.loads(result.stdout)["drill"]["targets"]
    assert target["amcheck"] == "passed" and target["problem"] is None

"""Every wait is bounded: behind a migration's table lock, and at a host that never answers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from testbed.postgres import PostgresServer
from tests.conftest import run_agent
from tests.faults.conftest import History
from tests.faults.table import expect

MIGRATION = "migration-42"


@contextmanager
def table_locked(pg_server: PostgresServer, database: str) -> Iterator[int]:
    """Hold ACCESS EXCLUSIVE on shop.orders in another session, as a migration would; yield
    that session's pid."""
    holder = subprocess.Popen(
        [str(pg_server.bin_directory / "psql"), "-X", "-q", "-A", "-t", "-h", pg_server.host,
         "-p", str(pg_server.port), "-U", pg_server.user, "-d", database],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={"PGPASSWORD": pg_server.password, "PATH": "/usr/bin:/bin"})
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(f"SET application_name = '{MIGRATION}'; BEGIN; LOCK TABLE shop.orders "
                       "IN ACCESS EXCLUSIVE MODE; SELECT pg_backend_pid();\n")
    holder.stdin.flush()
    pid = int(holder.stdout.readline())
    try:
        yield pid
    finally:
        holder.communicate("ROLLBACK;\n", timeout=30)


def test_a_backup_behind_a_table_lock_gives_up_and_names_the_holder(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        history: History) -> None:
    with table_locked(pg_server, database) as pid:
        started = time.monotonic()
        result = run_agent(["backup"], {**agent_env, "LOCK_WAIT_TIMEOUT": "2s"})
        elapsed = time.monotonic() - started
    expect(result, "a migration holds a table lock (ACCESS EXCLUSIVE) the dump needs")
    assert elapsed < 20, elapsed
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "gave up waiting 2s (LOCK_WAIT_TIMEOUT) for a table lock on shop.orders" in error
    assert f"held by pid {pid} (user {pg_server.user}, application '{MIGRATION}'," in error
    assert "in a transaction for " in error and f"pg_terminate_backend({pid})" in error
    history.assert_unchanged()  # nothing written, nothing pruned

    # The flag says the same as the variable, and the lock gone, the backup goes through.
    assert run_agent(["backup", "--lock-wait-timeout", "2s"], agent_env).returncode == 0


@contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel completes the handshake) and never
    says a word; yield its port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_a_database_host_that_never_answers_times_out(agent_env: dict[str, str],
                                                      history: History) -> None:
    with silent_listener() as port:
        environment = {**agent_env, "POSTGRES_PORT": str(port), "PGCONNECT_TIMEOUT": "2"}
        for arguments in (["backup"], ["prune", "--databases", "--dry-run"],
                          ["backup", "--connect-timeout", "2"]):
            if arguments[-1] == "2":
                environment.pop("PGCONNECT_TIMEOUT")
            started = time.monotonic()
            result = run_agent(arguments, environment)
            elapsed = time.monotonic() - started
            expect(result, "the database host accepts connections and never answers")
            assert elapsed < 20, (arguments, elapsed)
            assert f"PostgreSQL at 127.0.0.1:{port} did not answer within 2s " \
                   "(PGCONNECT_TIMEOUT)" in result.stderr, result.stderr
    history.assert_unchanged()

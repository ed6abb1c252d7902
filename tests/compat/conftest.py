"""Fixtures for the cross-version tests: a PostgreSQL 16.2 server beside the session's 18."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.postgres import PostgresServer
from testbed.postgres16 import running_server_16


@pytest.fixture(scope="session")
def pg16_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 16.2 server (pgserver's binaries) for the whole session.

    Like pg_server it fails, never skips, when it cannot start."""
    with running_server_16() as server:
        yield server

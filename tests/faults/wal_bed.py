"""A `wal stream` under test, on a PostgreSQL of its own, and the one proof of "nothing lost".

The proof is the same for every fault: after the fault and the recovery, the segment that
holds the last commit reaches S3, and `verify --wal` finds every segment from the base
backup up to it, each signed by the server's key. Then S3 holds the WAL of every committed
row, so a restore to `latest` brings each one back (the slot-loss test restores to show it).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.faulty_s3 import Request
from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import clean_environment, run_agent, signed
from tests.e2e.test_wal_stream import Streaming, archived, slot_active, wait_for

PREFIX = "backups/"
_slots = itertools.count(1)


@dataclass
class WalBed:
    server: PostgresServer
    s3: S3Endpoint
    bucket: str
    slot: str
    spool: Path
    root: Path
    environment: dict[str, str]
    streams: list[Streaming] = field(default_factory=list)

    def start(self, **overrides: str) -> Streaming:
        """Start `wal stream` (its stderr in a log file of its own)."""
        stream = Streaming({**self.environment, "WAL_SPOOL_DIR": str(self.spool), **overrides},
                           self.root / f"stream-{len(self.streams)}.log")
        self.streams.append(stream)
        return stream

    def commit(self, rows: int = 20) -> None:
        """Commit `rows` orders, one transaction each (the database is writable)."""
        self.server.psql("postgres", "INSERT INTO orders DEFAULT VALUES;\n" * rows)

    def orders(self) -> int:
        return int(self.server.psql("postgres", "SELECT count(*) FROM orders;"))

    def switch(self) -> str:
        """Commit, then close the segment holding that commit; return its name."""
        self.commit(1)
        name = self.server.psql("postgres",
                                "SELECT pg_walfile_name(pg_current_wal_lsn());").strip()
        self.server.psql("postgres", "SELECT pg_switch_wal();")
        return name

    def in_s3(self, name: str) -> bool:
        return any(key.endswith(f"/{name}") for key in archived(self.s3, self.bucket))

    def base_backup(self) -> dict[str, Any]:
        result = run_agent(["base-backup", "--json"], self.environment)
        assert result.returncode == 0, result.stdout + result.stderr
        report: dict[str, Any] = json.loads(result.stdout)
        return report

    def verify(self) -> tuple[int, dict[str, Any]]:
        result = run_agent(["verify", "--wal", "--json"], self.environment)
        report: dict[str, Any] = json.loads(result.stdout)
        return result.returncode, report

    def ready_in_spool(self) -> list[str]:
        """Complete WAL files waiting in the spool for S3."""
        return sorted(path.name for path in self.spool.iterdir()
                      if path.is_file() and len(path.name) == 24)

    def assert_nothing_lost(self) -> None:
        """Every committed row's WAL is in S3, from the base backup on, with no hole."""
        last = self.switch()
        wait_for(f"{last}, which holds the last commit, in S3", lambda: self.in_s3(last))
        code, report = self.verify()
        assert code == 0, report
        assert report["wal"]["findings"] == []
        wait_for("the spool to be empty", lambda: self.ready_in_spool() == [])


def make_bed(server: PostgresServer, s3: S3Endpoint, bucket: str, root: Path,
             **settings: str) -> WalBed:
    """A slot of its own (reserving WAL now), a spool, a backup directory, and the agent's
    variables: WAL_MAX_DELAY 1s, one S3 attempt per request (faults show at once)."""
    slot = f"faults_{os.getpid()}_{next(_slots)}"
    server.psql("postgres", "CREATE TABLE IF NOT EXISTS orders (id bigserial PRIMARY KEY, "
                            "at timestamptz NOT NULL DEFAULT clock_timestamp());"
                            f"SELECT pg_create_physical_replication_slot('{slot}', true);")
    spool = root / "spool"
    spool.mkdir(mode=0o700)
    (root / "backups").mkdir()
    environment = signed({**clean_environment(), **server.environment("postgres"),
                          **s3.environment(), "S3_BUCKET": bucket, "S3_PREFIX": PREFIX,
                          "BACKUP_DIR": str(root / "backups"), "WAL_SLOT": slot,
                          "WAL_SPOOL_DIR": str(spool), "WAL_MAX_DELAY": "1s",
                          "AWS_MAX_ATTEMPTS": "1", **settings})
    return WalBed(server, s3, bucket, slot, spool, root, environment)


def tear_down(bed: WalBed) -> None:
    for stream in bed.streams:
        if stream.process.poll() is None:
            stream.process.send_signal(signal.SIGTERM)
            stream.process.wait(30)
    wait_for("the slot to be released", lambda: not slot_active(bed.server, bed.slot), 30)
    bed.server.psql("postgres", "SELECT pg_drop_replication_slot(slot_name) FROM "
                                f"pg_replication_slots WHERE slot_name = '{bed.slot}';")


def forward(request: Request) -> None:
    """A faulty_s3 rule that lets everything through (S3 is down only between blocks)."""
    return None


def lines_with(stream: Streaming, text: str) -> list[str]:
    """The lines of the stream's stderr that hold `text`."""
    return [line for line in stream.stderr().splitlines() if text in line]


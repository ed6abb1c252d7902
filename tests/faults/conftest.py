"""Fault-injection helpers: catch the agent's children mid-flight, and prove nothing was lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil
import pytest

from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, make_backup
from tests.fabricate import fabricate_agent_backups, snapshot_files

WAIT_SECONDS = 60


def start_agent(arguments: list[str], environment: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(AGENT), *arguments], env=dict(environment), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_for_child(process: subprocess.Popen[str], name: str, *, argument: str | None = None,
                   stop: bool = True) -> psutil.Process:
    """Return the agent's descendant process called `name` as soon as it exists.

    With `stop` (the default) it is frozen (SIGSTOP) at once, so a fast child cannot finish
    before the test injects its fault; `thaw` lets it go on.
    """
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for child in parent.children(recursive=True):
            try:
                if child.name() == name and (argument is None or argument in child.cmdline()):
                    if stop:
                        freeze(child)
                    return child
            except psutil.NoSuchProcess:
                continue
        if process.poll() is not None:
            raise AssertionError(f"the agent ended before starting {name}: "
                                 f"{process.communicate()}")
        time.sleep(0.005)
    raise AssertionError(f"no {name} child within {WAIT_SECONDS}s")


def freeze(child: psutil.Process) -> None:
    os.kill(child.pid, signal.SIGSTOP)


def thaw(child: psutil.Process) -> None:
    os.kill(child.pid, signal.SIGCONT)


def s3_snapshot(s3_endpoint: S3Endpoint, bucket: str) -> dict[str, bytes]:
    client = s3_endpoint.client()
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for item in listing}


class History:
    """Earlier backups (local and in S3) that a failed run must leave byte-identical."""

    def __init__(self, backup_dir: Path, s3_endpoint: S3Endpoint, bucket: str) -> None:
        self.backup_dir = backup_dir
        self.s3_endpoint = s3_endpoint
        self.bucket = bucket
        self.before: tuple[dict[str, bytes | str], dict[str, bytes]] | None = None

    def record(self) -> None:
        self.before = (snapshot_files(self.backup_dir),
                       s3_snapshot(self.s3_endpoint, self.bucket))

    def assert_unchanged(self) -> None:
        assert self.before is not None
        local, remote = self.before
        assert snapshot_files(self.backup_dir) == local, "local backups changed"
        assert s3_snapshot(self.s3_endpoint, self.bucket) == remote, "S3 objects changed"

    def new_local_backups(self) -> list[str]:
        assert self.before is not None
        return sorted(name for name in snapshot_files(self.backup_dir)
                      if name.endswith(".sql.gz") and name not in self.before[0])


@pytest.fixture
def history(agent_env: dict[str, str], backup_dir: Path, s3_endpoint: S3Endpoint,
            bucket: str) -> Iterator[History]:
    """Ten older backups locally (KEEP_LOCAL=7 would prune 3+) and one real one in S3."""
    make_backup(agent_env)
    fabricate_agent_backups(backup_dir, count=9)
    record = History(backup_dir, s3_endpoint, bucket)
    record.record()
    yield record


def pg_wrapper(directory: Path, real_bin: Path, pg_dump_body: str) -> Path:
    """A PG_BINDIR whose pg_dump runs the real one through `pg_dump_body` (a fault)."""
    directory.mkdir()
    for program in ("psql", "pg_restore"):
        (directory / program).symlink_to(real_bin / program)
    script = directory / "pg_dump"
    script.write_text(f'#!/usr/bin/env bash\nREAL="{real_bin}/pg_dump"\n{pg_dump_body}\n')
    script.chmod(0o755)
    return directory

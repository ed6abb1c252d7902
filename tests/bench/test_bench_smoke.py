"""The benchmark cannot rot: a tiny run of it is part of `make test` (times are not asserted),
the point-in-time recovery rows included (two segments of WAL backlog, 3 s of pgbench)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_benchmark_runs_end_to_end_at_a_tiny_size() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.run", "--size", "2", "--repeat", "1",
                             "--load-seconds", "3"],
                            cwd=REPOSITORY, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr
    for row in ("pg_dump > /dev/null", "agent backup (local + S3, streamed)",
                "agent restore (S3)", "agent verify / (gzip -t + sha256sum)",
                "agent restore onto a brand-new server (S3)",
                "Peak agent RSS over all commands",
                "| WAL backlog drain (segments/s) | `backup-agent wal stream`",
                "barman-cloud plugin (quoted in issue 22, not measured)",
                "| lag under load (s), median / max of", "| base backup (s) | agent base-backup",
                "| replay of the whole archive (s) | agent restore-cluster"):
        assert row in result.stdout

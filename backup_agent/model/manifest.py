"""The manifest: a small JSON record written beside each backup and uploaded with it.

It is what makes a backup ours (retention only ever deletes backups with our manifest),
what `verify --restore-test` compares row counts against, and the completion marker in S3
(uploaded last).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backup_agent import __version__
from backup_agent.model.naming import AGENT_NAME

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class DumpFacts:
    """What the dump and its stored bytes turned out to be."""

    server_version: str
    pg_dump_version: str
    size_bytes: int  # as stored: compressed (and encrypted, with ENCRYPT_TO)
    uncompressed_bytes: int
    sha256: str  # of the stored bytes
    row_counts: Mapping[str, int]
    # The globals file: {"sha256", "size_bytes", "roles", "passwords_included"}. Counts
    # only: no role name, no hash, so the manifest stays readable without the key.
    globals_file: Mapping[str, Any] | None = None


def build_manifest(*, name: str, database: str, facts: DumpFacts, started: datetime,
                   finished: datetime, hostname: str,
                   encrypt_to: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "tool": AGENT_NAME,
        "tool_version": __version__,
        "format": MANIFEST_FORMAT,
        "name": name,
        "database": database,
        "server_version": facts.server_version,
        "pg_dump_version": facts.pg_dump_version,
        "compression": "gzip",
        # Public keys only. The row counts and table names below stay readable: they are
        # what retention, `list` and `verify` work from without the private key.
        "encryption": {"format": "age", "recipients": list(encrypt_to)} if encrypt_to else None,
        "size_bytes": facts.size_bytes,
        "uncompressed_bytes": facts.uncompressed_bytes,
        "sha256": facts.sha256,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_seconds": round((finished - started).total_seconds(), 3),
        "hostname": hostname,
        "row_counts": dict(facts.row_counts),
        "globals": dict(facts.globals_file) if facts.globals_file is not None else None,
    }


def render(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"

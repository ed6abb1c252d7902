"""Write one backup in BACKUP_DIR's format: the dump through gzip (and age) into an open file,
then its globals file, checksum, signature and manifest beside it.

`backup` writes its production dumps with it (uploading while it writes); `restore
--to-time` writes the dump of a database recovered as of T with it, so that the one proven
restore path reads both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from backup_agent.model.manifest import DumpFacts, build_manifest, render
from backup_agent.model.naming import (
    checksum_line,
    checksum_name,
    globals_name,
    manifest_name,
    signature_name,
)
from backup_agent.model.settings import Settings
from backup_agent.postgres.dump import DumpResult, dump_database
from backup_agent.storage import local
from backup_agent.streams.age import encrypting
from backup_agent.streams.globals_file import encode
from backup_agent.streams.gzip import compressing
from backup_agent.streams.hashing import HashingWriter

# Signs a manifest's exact bytes; returns the signature sidecar's content.
Sign = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Dumped:
    dump: DumpResult
    stored: HashingWriter  # what reached the file: its size and SHA-256


def dump_into(settings: Settings, handle: BinaryIO, *,
              on_stored: Callable[[int], None] | None = None,
              on_read: Callable[[int], None] | None = None) -> Dumped:
    """Dump settings.postgres.database into `handle`, gzip'd and (ENCRYPT_TO) age-encrypted.

    The chain, from the file up: file <- hash <- age <- gzip <- pg_dump."""
    with ExitStack() as chain:
        stored = HashingWriter(handle, on_stored)
        encrypted = chain.enter_context(encrypting(stored, settings.encrypt_to))
        compressed = chain.enter_context(compressing(encrypted))
        dump = dump_database(settings.postgres, compressed, on_read=on_read)
    stored.flush()
    return Dumped(dump=dump, stored=stored)


def write_sidecars(settings: Settings, directory: Path, name: str, dumped: Dumped, *,
                   started: datetime, finished: datetime, hostname: str,
                   sign: Sign | None) -> DumpFacts:
    """The globals file, the checksum, the signature over the manifest's exact bytes, then
    the manifest (last: it marks the backup complete); return the dump's facts."""
    dump, stored = dumped.dump, dumped.stored
    facts = DumpFacts(server_version=dump.server.version, pg_dump_version=dump.pg_dump_version,
                      size_bytes=stored.size, uncompressed_bytes=dump.uncompressed_bytes,
                      sha256=stored.hexdigest(), row_counts=dump.row_counts,
                      globals_file=_globals_file(settings, directory, name,
                                                 dump.globals_document))
    manifest = render(build_manifest(name=name, database=settings.postgres.database,
                                     facts=facts, started=started, finished=finished,
                                     hostname=hostname, encrypt_to=settings.encrypt_to))
    local.write_small_file(directory / checksum_name(name), checksum_line(facts.sha256, name))
    if sign is not None:
        local.write_small_file(directory / signature_name(name),
                               sign(manifest.encode()).decode())
    local.write_small_file(directory / manifest_name(name), manifest)
    return facts


def _globals_file(settings: Settings, directory: Path, name: str,
                  document: bytes) -> dict[str, Any]:
    """Write the globals file (encrypted like the dump); return its manifest entry."""
    stored = encode(document, settings.encrypt_to)
    local.write_small_file(directory / globals_name(name), stored)
    content = json.loads(document)
    return {"sha256": hashlib.sha256(stored).hexdigest(), "size_bytes": len(stored),
            "roles": len(content["roles"]),
            "passwords_included": content["passwords_included"]}

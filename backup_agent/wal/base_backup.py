"""One base backup into S3: pg_basebackup through the archive's chain (base-backup's core).

One pass, as a dump: pg_basebackup's tar → SHA-256 of the plaintext (and a look at its
label and manifest) → gzip (ISA-L) → age (ENCRYPT_TO) → SHA-256 as stored → a hidden file
in BACKUP_DIR that is uploaded create-only while it grows. Then the signed descriptor
(physical/descriptor.py), last: a base backup without one is incomplete and never used.
The local file is removed at the end: without the WAL archive it restores nothing. Used by
`base-backup` and by `wal stream` after a lost slot.
"""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backup_agent.model.errors import S3Error
from backup_agent.model.naming import AGENT_NAME
from backup_agent.model.settings import Settings
from backup_agent.wal.objects import Sign

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Store

CONTENT_TYPE = "application/octet-stream"


def utc_now() -> datetime:
    return datetime.now(UTC)


def take_base_backup(settings: Settings, store: S3Store, sign: Sign | None, *,
                     clock: Callable[[], datetime] = utc_now) -> tuple[dict[str, Any], str]:
    """Take one base backup into `store`; return its descriptor and the descriptor's key.
    Raise a BackupAgentError."""
    from backup_agent.physical.basebackup import stream_basebackup
    from backup_agent.physical.descriptor import (
        DESCRIPTOR_NAME,
        TAR_NAME,
        Descriptor,
        StoredFile,
    )
    from backup_agent.postgres.replication import identify_system
    from backup_agent.postgres.session import SqlSession
    from backup_agent.storage import local
    from backup_agent.streams.age import encrypting
    from backup_agent.streams.gzip import compressing
    from backup_agent.streams.hashing import HashingWriter
    from backup_agent.wal.codec import encode_stream
    from backup_agent.wal.names import base_key, base_stamp
    from backup_agent.wal.objects import encoding_for, metadata_for, streamed_metadata

    directory = settings.backup_directory
    local.check_writable_directory(directory)
    identity = identify_system(settings.postgres)
    with SqlSession(settings.postgres, settings.postgres.database) as session:
        server = session.server_facts()
    started = clock()
    stamp = base_stamp(started)
    tar_key = base_key(identity.system_identifier, stamp, TAR_NAME)
    extra = {"hostname": socket.gethostname(), "tool": AGENT_NAME}
    encrypted = bool(settings.encrypt_to)
    with local.temporary_file(directory, f"base-{stamp}.tar") as (temporary, handle):
        upload = store.start_upload(store.prefix + tar_key, temporary,
                                    content_type=CONTENT_TYPE,
                                    metadata=streamed_metadata(encrypted=encrypted, extra=extra))
        try:
            with ExitStack() as chain:
                stored = HashingWriter(handle, upload.advance)
                sealed = chain.enter_context(encrypting(stored, settings.encrypt_to))
                compressed = chain.enter_context(compressing(sealed))
                plain = HashingWriter(compressed)
                facts = stream_basebackup(settings.postgres, plain,  # type: ignore[arg-type]
                                          label=f"{AGENT_NAME} {stamp}")
            stored.flush()
            os.fsync(handle.fileno())
            store.finish_upload(upload, stored.size)
        except BaseException as error:
            upload.abort()
            if isinstance(error, OSError):
                raise local.storage_error(error, directory) from None
            raise
    descriptor = Descriptor(
        system_identifier=identity.system_identifier, server_version=server.version,
        major_version=server.major, start_lsn=facts.start_lsn,
        start_timeline=facts.start_timeline, end_lsn=facts.end_lsn,
        end_timeline=facts.end_timeline, start_time=started.isoformat(),
        end_time=clock().isoformat(), label=f"{AGENT_NAME} {stamp}",
        tar=StoredFile(key=tar_key, sha256=plain.hexdigest(), size=plain.size,
                       stored_sha256=stored.hexdigest(), stored_size=stored.size,
                       encoding=encoding_for(encrypted=encrypted)))
    descriptor_key = base_key(identity.system_identifier, stamp, DESCRIPTOR_NAME)
    with local.temporary_file(directory, f"base-{stamp}.descriptor") as (path, target):
        described = encode_stream(io.BytesIO(descriptor.render()), target, ())
        target.close()
        try:
            store.put_file(store.prefix + descriptor_key, path, content_type=CONTENT_TYPE,
                           metadata=metadata_for(descriptor_key, described, sign, extra))
        except S3Error as error:
            raise S3Error(f"{error} (the base backup's tar is in S3 but without its "
                          "descriptor it is incomplete: run base-backup again)") from None
    return json.loads(descriptor.render()), descriptor_key

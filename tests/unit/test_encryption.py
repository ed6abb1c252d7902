"""The age pipe pieces: streamed both ways, errors kept as they happened, never a hang."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pyrage
import pytest
from pyrage import x25519

from backup_agent.model.age_keys import parse_recipients
from backup_agent.model.errors import ConfigurationError
from backup_agent.streams.age import (
    DecryptingReader,
    EncryptingWriter,
    load_identities,
)

IDENTITY = x25519.Identity.generate()
RECIPIENT = str(IDENTITY.to_public())
PLAINTEXT = os.urandom(3 * 1024 * 1024 + 12345)  # several age chunks and a partial one


class Collecting(io.RawIOBase):
    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


def encrypt(plaintext: bytes) -> bytes:
    target = Collecting()
    writer = EncryptingWriter(target, [RECIPIENT])
    for start in range(0, len(plaintext), 100_000):
        writer.write(plaintext[start:start + 100_000])
    writer.close()
    return bytes(target.buffer)


def read_all(reader: DecryptingReader) -> bytes:
    pieces = []
    try:
        while chunk := reader.read(65536):
            pieces.append(chunk)
    finally:
        reader.close()
    return b"".join(pieces)


def test_streamed_encryption_is_standard_age_and_streams_back() -> None:
    ciphertext = encrypt(PLAINTEXT)
    assert pyrage.decrypt(ciphertext, [IDENTITY]) == PLAINTEXT
    reader = DecryptingReader(io.BytesIO(ciphertext), [IDENTITY])
    assert read_all(reader) == PLAINTEXT and reader.error is None


def test_a_truncated_or_foreign_stream_ends_with_an_error_not_a_hang() -> None:
    ciphertext = encrypt(PLAINTEXT)
    truncated = DecryptingReader(io.BytesIO(ciphertext[:-1000]), [IDENTITY])
    assert len(read_all(truncated)) < len(PLAINTEXT)
    assert truncated.error is not None and "truncated or was changed" in truncated.error
    foreign = DecryptingReader(io.BytesIO(ciphertext), [x25519.Identity.generate()])
    assert read_all(foreign) == b"" and "wrong key" in (foreign.error or "")


def test_a_reader_closed_early_stops_the_decrypting_thread() -> None:
    reader = DecryptingReader(io.BytesIO(encrypt(PLAINTEXT)), [IDENTITY])
    assert reader.read(1024)
    reader.close()  # returns: the thread's next write fails on the closed pipe


def test_a_failing_source_or_target_raises_its_own_exception() -> None:
    class Failing:
        def read(self, size: int = -1, /) -> bytes:
            raise ConnectionResetError("the network went away")

    with pytest.raises(ConnectionResetError, match="network went away"):
        read_all(DecryptingReader(Failing(), [IDENTITY]))

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
            raise OSError(errno.ENOSPC, "No space left on device")

    writer = EncryptingWriter(Full(), [RECIPIENT])
    with pytest.raises(OSError) as raised:
        for _ in range(100):  # more than the pipe holds: the writer must not block
            writer.write(PLAINTEXT[:1024 * 1024])
        writer.close()
    assert raised.value.errno == errno.ENOSPC


def test_recipients_and_identity_files_are_parsed_strictly(tmp_path: Path) -> None:
    second = str(x25519.Identity.generate().to_public())
    assert parse_recipients(f"{RECIPIENT}, {second}") == (RECIPIENT, second)
    assert parse_recipients("") == ()
    with pytest.raises(ConfigurationError, match="never the secret key"):
        parse_recipients(str(IDENTITY))
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"# created: today\n# public key: {RECIPIENT}\n\n{IDENTITY}\n")
    assert [str(item.to_public()) for item in load_identities(key_file)] == [RECIPIENT]
    key_file.write_text("# only comments\n")
    with pytest.raises(ConfigurationError, match="holds no age secret key"):
        load_identities(key_file)

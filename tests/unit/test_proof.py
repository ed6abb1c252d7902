"""The proof's second read: each stored block is compared with the first read's digest."""

from __future__ import annotations

import io
import os

import pytest

from backup_agent.restoring.proof import BLOCK_BYTES, ChangedError, _Comparing, _Recording

STORED = os.urandom(BLOCK_BYTES * 2 + 123)


def recorded(data: bytes) -> list[bytes]:
    recording = _Recording(io.BytesIO(data))
    while recording.read(300_000):
        pass
    return recording.finish()


def read_all(stream: _Comparing) -> bytes:
    chunks = []
    while chunk := stream.read(70_000):
        chunks.append(chunk)
    return b"".join(chunks)


def test_the_proven_bytes_come_back_whole() -> None:
    digests = recorded(STORED)
    assert len(digests) == 3
    assert read_all(_Comparing(io.BytesIO(STORED), digests)) == STORED


@pytest.mark.parametrize(("changed", "reason"), [
    (STORED[:BLOCK_BYTES + 5] + b"X" + STORED[BLOCK_BYTES + 6:], "block 1"),
    (STORED[:-1], "block 2"),
    (STORED[:BLOCK_BYTES], "shorter"),
    (STORED + b"more", "block 2"),
    (STORED[:BLOCK_BYTES] + STORED[:BLOCK_BYTES], "block 1"),
])
def test_a_change_after_the_proof_is_caught_before_its_block_is_handed_on(
        changed: bytes, reason: str) -> None:
    stream = _Comparing(io.BytesIO(changed), recorded(STORED))
    handed_on = bytearray()
    with pytest.raises(ChangedError, match=reason):
        while chunk := stream.read(70_000):
            handed_on += chunk
    # Nothing of the changed block (or after it) was handed on.
    assert bytes(handed_on) == STORED[:len(handed_on)]
    assert len(handed_on) % BLOCK_BYTES == 0

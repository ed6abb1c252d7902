"""The prefetcher against moto: objects written by the uploader, read back proven, in order,
bounded, along the timelines, stopping at the first missing segment and saying why.

Segments here are small files named like segments (the format does not care about size);
the plan's segment size is PostgreSQL's default, which only maps LSNs to names.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup_agent.keys.signing import new_signing_key, sign, signer
from backup_agent.model.errors import (
    ConfigurationError,
    SourceNotFoundError,
    VerificationError,
)
from backup_agent.model.settings import S3Settings
from backup_agent.physical.handout import Offer
from backup_agent.storage.s3 import S3Store
from backup_agent.streams.age import new_identity, parse_identities
from backup_agent.wal.fetch import STAGING, Prefetcher
from backup_agent.wal.history import WalArchive, follow, last_segment
from backup_agent.wal.names import parse_lsn, parse_wal_name
from backup_agent.wal.timelines import plan_for
from backup_agent.wal.uploader import Encoder, upload_file
from testbed.s3 import S3Endpoint

SYSID = "7412345678901234567"
SEGMENT_BYTES = 16 * 1024 * 1024


@pytest.fixture
def store(s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return S3Store(S3Settings(bucket=bucket, prefix="backups/", part_size_mib=5))


@pytest.fixture
def keys() -> tuple[Ed25519PrivateKey, str]:
    pem, public = new_signing_key()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key, public


def archive(store: S3Store, tmp_path: Path, keys: tuple[Ed25519PrivateKey, str],
            files: dict[str, bytes], *, recipients: tuple[str, ...] = (),
            signed: bool = True) -> None:
    """Upload `files` (WAL file name -> content) the way `wal stream` does."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    encoder = Encoder(system_identifier=SYSID, recipients=recipients,
                      sign=partial(sign, keys[0]) if signed else None)
    for name, content in files.items():
        path = spool / name
        path.write_bytes(content)
        wal = parse_wal_name(name)
        assert wal is not None
        upload_file(store, wal, path, encoder)


def content_of(name: str) -> bytes:
    return name.encode() * 1000


def trusting(store: S3Store, keys: tuple[Ed25519PrivateKey, str], **extra: object) -> WalArchive:
    vouch = partial(signer, trusted=[keys[1]])
    return WalArchive(store=store, system_identifier=SYSID,
                      vouch=lambda document, statement: vouch(document, statement),
                      **extra)  # type: ignore[arg-type]


def local_directory(tmp_path: Path) -> Path:
    directory = tmp_path / "wal"
    directory.mkdir()
    return directory


def segments(timeline: int, numbers: range | list[int]) -> dict[str, bytes]:
    names = [f"{timeline:08X}00000000{number:08X}" for number in numbers]
    return {name: content_of(name) for name in names}


def test_segments_arrive_proven_in_order_and_only_a_window_ahead(
        store: S3Store, tmp_path: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    identity, recipient = new_identity()
    archive(store, tmp_path, keys, segments(1, range(3, 13)), recipients=(recipient,))
    directory = local_directory(tmp_path)
    plan = plan_for(1, [], SEGMENT_BYTES)
    source = trusting(store, keys, identities=parse_identities(identity.decode(), "test"))
    with Prefetcher(source, plan, directory, 3, workers=3, ahead=4) as prefetcher:
        for number in range(3, 7):
            path = prefetcher.wait_for(number, timeout=30)
            assert path.read_bytes() == content_of(path.name)
        held = {path.name for path in directory.iterdir() if path.name != STAGING}
        assert held == set(segments(1, range(3, 7)))  # nothing beyond the window
        assert prefetcher.offer("000000010000000000000003") is Offer.READY
        assert prefetcher.offer("000000020000000000000003") is Offer.NONE  # not on the plan
        prefetcher.wait_for(9, timeout=30)  # replay moved on: what it passed is gone
        held = {path.name for path in directory.iterdir() if path.name != STAGING}
        assert "000000010000000000000003" not in held and "000000010000000000000009" in held
        assert len(held) <= 4 + 2


def test_the_end_of_the_archive_is_reported_as_the_end(
        store: S3Store, tmp_path: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    archive(store, tmp_path, keys, segments(1, range(3, 6)))
    with Prefetcher(trusting(store, keys), plan_for(1, [], SEGMENT_BYTES),
                    local_directory(tmp_path), 3, ahead=8) as prefetcher:
        prefetcher.wait_for(5, timeout=30)
        with pytest.raises(SourceNotFoundError, match="archive ends before WAL segment "
                                                      "000000010000000000000006"):
            prefetcher.wait_for(6, timeout=30)
        assert prefetcher.gap is not None and not prefetcher.gap.hole
        assert prefetcher.offer("000000010000000000000006") is Offer.NONE
        assert prefetcher.offer("000000010000000000000005") is Offer.READY


def test_a_missing_segment_in_the_middle_is_a_hole_not_the_end(
        store: S3Store, tmp_path: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    archive(store, tmp_path, keys, segments(1, [3, 4, 6, 7]))
    with Prefetcher(trusting(store, keys), plan_for(1, [], SEGMENT_BYTES),
                    local_directory(tmp_path), 3) as prefetcher:
        with pytest.raises(SourceNotFoundError, match="000000010000000000000005 is missing "
                           "from the archive while 000000010000000000000006 exists"):
            prefetcher.wait_for(5, timeout=30)
        assert prefetcher.gap is not None and prefetcher.gap.hole
        assert prefetcher.offer("000000010000000000000005") is Offer.REFUSE  # the hole
        assert prefetcher.problem() is not None and "hole" in prefetcher.problem()  # type: ignore[operator]


def test_replay_follows_the_timeline_switch_from_the_history_file(
        store: S3Store, tmp_path: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    history = b"1\t0/5000060\tbefore 2026-12-02 21:00:00+00\n"
    archive(store, tmp_path, keys, {**segments(1, range(3, 7)), "00000002.history": history,
                                    **segments(2, range(5, 8))})
    directory = local_directory(tmp_path)
    source = trusting(store, keys)
    plan = follow(source, start_timeline=1, start_lsn=parse_lsn("0/3000028"),
                  segment_bytes=SEGMENT_BYTES, directory=directory)
    assert plan.target == 2 and (directory / "00000002.history").read_bytes() == history
    assert last_segment(source, plan) == (2, "000000020000000000000007")
    with Prefetcher(source, plan, directory, 3) as prefetcher:
        fetched = [prefetcher.wait_for(number, timeout=30).name for number in range(3, 8)]
    # The switch segment (5) comes from the new timeline; timeline 1's 5 and 6 never do.
    assert fetched == ["000000010000000000000003", "000000010000000000000004",
                       "000000020000000000000005", "000000020000000000000006",
                       "000000020000000000000007"]
    with pytest.raises(ConfigurationError, match="does not pass through"):
        follow(source, start_timeline=1, start_lsn=parse_lsn("0/6000028"),
               segment_bytes=SEGMENT_BYTES, directory=directory)


def test_an_unsigned_segment_stops_the_prefetcher_with_its_reason(
        store: S3Store, tmp_path: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    archive(store, tmp_path, keys, segments(1, [3]))
    archive(store, tmp_path, keys, segments(1, [4]), signed=False)
    directory = local_directory(tmp_path)
    with Prefetcher(trusting(store, keys), plan_for(1, [], SEGMENT_BYTES), directory,
                    3) as prefetcher:
        prefetcher.wait_for(3, timeout=30)
        with pytest.raises(VerificationError, match="is not signed"):
            prefetcher.wait_for(4, timeout=30)
        assert prefetcher.offer("000000010000000000000004") is Offer.REFUSE
    assert not (directory / "000000010000000000000004").exists()
    assert not list((directory / STAGING).iterdir())

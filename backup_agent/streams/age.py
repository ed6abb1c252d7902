"""Client-side encryption with age, streamed: the server holds only public keys.

pyrage (Python bindings to rage, the Rust age implementation) offers `encrypt_io` and
`decrypt_io`, which pull from one file object and push to another. Our pipeline is a chain
of writers (backup) and of readers (restore, verify), so each direction runs pyrage in a
thread on one side of an OS pipe: memory stays bounded by the pipe and age's 64 KiB chunks,
and the data still passes once. The files are standard age (`age -d -i key.txt` reads them).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyrage
from pyrage import x25519

from backup_agent.model.errors import ConfigurationError

PIPE_CHUNK_BYTES = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def load_identities(path: Path) -> list[x25519.Identity]:
    """Read an age identity file (as `age-keygen` or `backup-agent keygen` write it).

    Errors never quote the file: it holds private keys.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigurationError(f"identity file {path} does not exist: fix --identity "
                                 "(AGE_IDENTITY_FILE)") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not text"
        raise ConfigurationError(f"cannot read identity file {path} ({reason}): check its "
                                 "permissions") from None
    return parse_identities(text, f"identity file {path}")


def parse_identities(text: str, origin: str) -> list[x25519.Identity]:
    """Return the age secret keys in `text`: lines (or comma-separated words) of
    AGE-SECRET-KEY-1…, `#` comments ignored. Errors never quote the text."""
    identities = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line.startswith("#"):
            continue
        for word in line.replace(",", " ").split():
            try:
                identities.append(x25519.Identity.from_str(word))
            except pyrage.IdentityError:
                raise ConfigurationError(f"{origin}, line {number}, is not an age secret key "
                                         "(AGE-SECRET-KEY-1…): use the file `backup-agent "
                                         "keygen` or `age-keygen` wrote") from None
    if not identities:
        raise ConfigurationError(f"{origin} holds no age secret key (AGE-SECRET-KEY-1…): use "
                                 "the file `backup-agent keygen` or `age-keygen` wrote")
    return identities


def public_keys(identities: Sequence[x25519.Identity]) -> list[str]:
    return [str(identity.to_public()) for identity in identities]


def check_identity_matches(identities: Sequence[x25519.Identity], recipients: Sequence[str],
                           *, origin: str, location: str) -> None:
    """Refuse up front when none of our keys is one the backup was encrypted to."""
    if recipients and not set(public_keys(identities)) & set(recipients):
        raise ConfigurationError(
            f"wrong key: {location} was encrypted to {', '.join(recipients)}, but "
            f"{origin} holds the key for {', '.join(public_keys(identities))}: pass the "
            "matching --identity (AGE_IDENTITY_FILE, or AGE_IDENTITY)")


def new_identity() -> tuple[bytes, str]:
    """Return a new identity file's content (as age-keygen writes it) and its public key."""
    identity = x25519.Identity.generate()
    public = str(identity.to_public())
    content = f"# created by backup-agent keygen\n# public key: {public}\n{identity}\n"
    return content.encode(), public


class _PipeWorker:
    """Run one pyrage call in a thread, remembering how it ended."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def start(self, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except Exception as error:  # noqa: BLE001 - handed to the reading/writing side
                self.error = error

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


class EncryptingWriter(io.RawIOBase):
    """A write-only file: what is written comes out of `target` age-encrypted.

    `close()` finishes the age stream (its final, authenticated chunk) and re-raises any
    error of the encrypting thread.
    """

    def __init__(self, target: BinaryIO | io.RawIOBase, recipients: Sequence[str]) -> None:
        super().__init__()
        read_end, write_end = os.pipe()
        self._reader = os.fdopen(read_end, "rb")
        self._pipe = os.fdopen(write_end, "wb", buffering=0)
        self._worker = _PipeWorker("age-encrypt")
        keys = [x25519.Recipient.from_str(item) for item in recipients]
        self._target = _RecordingWriter(target)

        def encrypt() -> None:
            try:
                pyrage.encrypt_io(self._reader, self._target, keys)
            finally:
                # A failed write (a full disk) must not leave our writer blocked on the pipe.
                self._reader.close()

        self._worker.start(encrypt)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        try:
            while view:
                written = self._pipe.write(view)
                view = view[written or 0:]
        except BrokenPipeError:
            self._finish()
            raise OSError("the age encryption stopped early") from None
        return len(data)

    def _finish(self) -> None:
        if not self._pipe.closed:
            with contextlib.suppress(BrokenPipeError):
                self._pipe.close()
        self._worker.join()
        if self._target.error is not None:
            raise self._target.error  # as the file raised it: "no space left" keeps its errno
        if self._worker.error is not None:
            error, self._worker.error = self._worker.error, None
            raise OSError(f"age encryption failed: {error}")

    def close(self) -> None:
        if not self.closed:
            try:
                self._finish()
            finally:
                super().close()


@contextmanager
def encrypting(target: Any, recipients: Sequence[str]) -> Iterator[Any]:
    """Yield a writer that age-encrypts into `target` to `recipients`; `target` itself when
    there are none. The age stream is finished (its last chunk written) on the way out."""
    if not recipients:
        yield target
        return
    writer = EncryptingWriter(target, recipients)
    try:
        yield writer
    finally:
        writer.close()  # raises what encryption hit (a full disk keeps its errno)


class _RecordingWriter:
    """Pass writes through, keeping the target's own exception: pyrage would flatten it."""

    def __init__(self, target: BinaryIO | io.RawIOBase) -> None:
        self._target = target
        self.error: BaseException | None = None

    def write(self, data: bytes, /) -> int | None:
        try:
            return self._target.write(data)
        except BaseException as error:
            self.error = error
            raise


class _RecordingReader:
    """Pass reads through, keeping the source's own exception: pyrage would flatten it."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.error: BaseException | None = None

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._source.read(size)
        except BaseException as error:
            self.error = error
            raise


class DecryptingReader:
    """Read the plaintext of an age stream `source`.

    At the end of the plaintext (or when decryption fails), `read` returns b"" and `error`
    says what went wrong, if anything. A wrong key, a truncated file and a changed byte
    all fail: age authenticates every 64 KiB chunk and marks the last one.
    """

    def __init__(self, source: Readable, identities: Sequence[x25519.Identity]) -> None:
        read_end, write_end = os.pipe()
        self._pipe = os.fdopen(read_end, "rb")
        writer = os.fdopen(write_end, "wb")
        self._worker = _PipeWorker("age-decrypt")
        self._source = _RecordingReader(source)
        self.error: str | None = None

        def decrypt() -> None:
            try:
                pyrage.decrypt_io(self._source, writer, list(identities))
            finally:
                with contextlib.suppress(BrokenPipeError):
                    writer.close()

        self._worker.start(decrypt)

    def read(self, size: int = PIPE_CHUNK_BYTES, /) -> bytes:
        data = self._pipe.read(size)
        if not data:
            self._worker.join()
            if self._source.error is not None:
                raise self._source.error  # an S3 or disk error, as the source raised it
            if self._worker.error is not None:
                self.error = describe_decrypt_error(self._worker.error)
        return data

    def close(self) -> None:
        # Closing our end first makes a blocked decrypting thread fail fast (broken pipe).
        self._pipe.close()
        self._worker.join()


def describe_decrypt_error(error: Exception) -> str:
    text = str(error)
    if "No matching keys" in text:
        return ("cannot decrypt: none of the --identity keys is a recipient of this backup "
                "(wrong key)")
    # Anything else age refuses is a header or chunk that does not authenticate.
    return f"age decryption failed ({text}): the file is truncated or was changed"

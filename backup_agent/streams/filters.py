"""On the decompressed SQL's way to psql: byte ranges left out, and where COPY data ends."""

from __future__ import annotations

from collections.abc import Callable, Iterable

try:
    import ctypes
except ImportError:  # a Python built without _ctypes: bytes.find, holding the GIL
    ctypes = None  # type: ignore[assignment]


def _memmem() -> Callable[..., int | None] | None:
    """The C library's memmem, or None where there is none."""
    if ctypes is None:
        return None
    try:
        # The symbols already loaded (libc among them): find_library would run ldconfig.
        function = ctypes.CDLL(None).memmem
    except (OSError, AttributeError, TypeError):
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return function


# ctypes releases the GIL around a C call, and memmem is faster than bytes.find for a
# short needle: COPY data is then searched while another thread decompresses the next
# piece (streams/decoding.py), which about halves the proving pass on two cores.
_MEMMEM = _memmem()


def find(buffer: bytes, needle: bytes, start: int) -> int:
    """`buffer.find(needle, start)`, searched without holding the GIL where possible."""
    if _MEMMEM is None or type(buffer) is not bytes or not needle or start < 0:
        return buffer.find(needle, start)
    if start >= len(buffer):
        return -1
    base = ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value
    assert base is not None
    found = _MEMMEM(base + start, len(buffer) - start, needle, len(needle))
    return -1 if found is None else found - base


class RangeDropper:
    """Leave out the given byte ranges [start, end) of the stream; pass the rest on."""

    def __init__(self, sink: Callable[[bytes], None], ranges: Iterable[tuple[int, int]]) -> None:
        self._sink = sink
        self._ranges = sorted(ranges)
        self._position = 0  # of the next byte in the stream

    def __call__(self, data: bytes) -> None:
        start, end = self._position, self._position + len(data)
        self._position = end
        kept_from = start
        for low, high in self._ranges:
            if high <= kept_from or low >= end:
                continue
            if low > kept_from:
                self._sink(data[kept_from - start:low - start])
            kept_from = max(kept_from, min(high, end))
        if kept_from < end:
            self._sink(data[kept_from - start:] if kept_from > start else data)


def copy_end(buffer: bytes, start: int) -> int:
    """Return where the line that ends COPY data starts (`start` is a line start), or -1.

    As psql: the line is exactly a backslash and a dot, before LF, CR LF, or the end of
    what was read so far (the next chunk decides).
    """
    def ends_here(at: int) -> bool:
        after = buffer[at + 2:at + 4]
        return after in (b"", b"\r", b"\r\n") or after.startswith(b"\n")

    if buffer.startswith(b"\\.", start) and ends_here(start):
        return start
    found = find(buffer, b"\n\\.", start)
    while found >= 0:
        if ends_here(found + 1):
            return found + 1
        found = find(buffer, b"\n\\.", found + 1)
    return -1

"""Where COPY data ends in the decompressed SQL, searched without holding the GIL."""

from __future__ import annotations

from collections.abc import Callable

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

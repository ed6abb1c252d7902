"""The WAL archive's settings (WAL_SPOOL_DIR, WAL_SPOOL_MAX, WAL_MAX_DELAY, WAL_SLOT), parsed.

Declared with every other setting in `model.variables`; resolved here so that
`model.settings` stays one screenful.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from backup_agent.model.durations import parse_duration
from backup_agent.model.errors import ConfigurationError
from backup_agent.model.variables import named

SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
UNIT_BYTES = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
              "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
# A replication slot name: PostgreSQL allows lower-case letters, digits and underscores.
SLOT = re.compile(r"^[a-z0-9_]{1,63}$")
# Below one segment (16 MiB by default) the receiver could never finish a single one.
MINIMUM_SPOOL_BYTES = 64 * 1024**2


def parse_size(text: str, variable: str) -> int:
    """Return the bytes in `2GiB`, `500MB`, `1073741824` (a bare number is bytes)."""
    match = SIZE.match(text)
    if not match:
        raise ConfigurationError(f"{variable}={text!r} is not a size: use e.g. 2GiB, 500MiB "
                                 f"(fix {variable})")
    return int(float(match[1]) * UNIT_BYTES[(match[2] or "B").lower()])


def _spool_max(text: str) -> int:
    size = parse_size(text, "WAL_SPOOL_MAX")
    if size < MINIMUM_SPOOL_BYTES:
        raise ConfigurationError(f"WAL_SPOOL_MAX={text!r} is under 64MiB, less than a few WAL "
                                 "segments: fix WAL_SPOOL_MAX (e.g. 2GiB)")
    return size


def _max_delay(text: str) -> timedelta:
    delay = parse_duration(text, name="WAL_MAX_DELAY")
    if delay.total_seconds() < 1:
        raise ConfigurationError(f"WAL_MAX_DELAY={text!r} is under a second: fix WAL_MAX_DELAY "
                                 "(e.g. 60s)")
    return delay


def _slot(text: str) -> str:
    if not SLOT.match(text):
        raise ConfigurationError(f"WAL_SLOT={text!r} is not a replication slot name (lower-case "
                                 "letters, digits and _, at most 63): fix WAL_SLOT")
    return text


DEFAULT_MAX_DELAY = _max_delay(named("WAL_MAX_DELAY").default)


@dataclass(frozen=True)
class WalSettings:
    spool_directory: Path = Path(named("WAL_SPOOL_DIR").default)
    spool_max_bytes: int = _spool_max(named("WAL_SPOOL_MAX").default)
    max_delay: timedelta = DEFAULT_MAX_DELAY
    slot: str = _slot(named("WAL_SLOT").default)


def resolve_wal_settings(text: Callable[[str], str]) -> WalSettings:
    """Return the WAL settings; `text(variable)` is the resolved text (default included)."""
    return WalSettings(spool_directory=Path(text("WAL_SPOOL_DIR")),
                       spool_max_bytes=_spool_max(text("WAL_SPOOL_MAX")),
                       max_delay=_max_delay(text("WAL_MAX_DELAY")), slot=_slot(text("WAL_SLOT")))

"""Durations as operators write them: `26h`, `90m`, `2d`, `45s` (a bare number is seconds)."""

from __future__ import annotations

import re
from datetime import timedelta

from backup_agent.model.errors import ConfigurationError

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def human_duration(duration: timedelta) -> str:
    """`26h`, `90m`, `5s`, `1.5h`, `24h`, `3d`: as an operator would write it (days only
    from two on)."""
    seconds = duration.total_seconds()
    for unit in ("d", "h", "m"):
        enough = UNIT_SECONDS[unit] * (2 if unit == "d" else 1)
        if seconds >= enough and seconds % (UNIT_SECONDS[unit] / 2) == 0:
            return f"{seconds / UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def parse_duration(text: str, *, name: str = "--max-age") -> timedelta:
    """Return the duration in `26h`, `90m`, `2d`, `45s` or `45` (seconds).

    Raise ConfigurationError naming `name` (the flag or variable) if it is not one.
    """
    match = DURATION.match(text)
    if not match:
        raise ConfigurationError(f"{name} {text!r} is not a duration: use e.g. 26h, 90m, 2d, "
                                 f"30s (fix {name})")
    return timedelta(seconds=float(match[1]) * UNIT_SECONDS[match[2] or "s"])


def age_text(duration: timedelta) -> str:
    """How old something is, as `list` shows it: `45s`, `12m`, `5h07m`, `3d`."""
    seconds = max(0, int(duration.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"

"""The moment a point-in-time restore recovers to (`--to-time`), and the window it must lie in.

"As of T" means every transaction whose commit timestamp is at or before T and none after:
PostgreSQL's `recovery_target_time = T` with `recovery_target_inclusive = on`. T needs an
explicit offset (`Z` for UTC): a time without one would mean something different on the
machine that restores than on the one that committed. `latest` is the end of the archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backup_agent.model.errors import ConfigurationError

LATEST = "latest"


@dataclass(frozen=True)
class RecoveryTarget:
    moment: datetime | None  # None: the end of the archive

    @property
    def latest(self) -> bool:
        return self.moment is None

    def describe(self) -> str:
        return LATEST if self.moment is None else self.moment.isoformat()


def parse_target(text: str) -> RecoveryTarget:
    """Return the target `--to-time TEXT` names; raise ConfigurationError (exit 2) when it
    is not `latest` or an ISO 8601 time with an offset."""
    cleaned = text.strip()
    if cleaned.lower() == LATEST:
        return RecoveryTarget(moment=None)
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ConfigurationError(f"--to-time {text!r} is not a time: write it as ISO 8601 with "
                                 "an offset, e.g. 2026-12-02T21:05:09Z or "
                                 "2026-12-02 21:05:09+09:00, or `latest`") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigurationError(f"--to-time {text!r} has no UTC offset: add one (Z for UTC, "
                                 "e.g. +09:00), so it means the same moment everywhere")
    return RecoveryTarget(moment=moment)


def postgres_time(moment: datetime) -> str:
    """Return `moment` as recovery_target_time reads it (microseconds and offset kept)."""
    return moment.isoformat(sep=" ")


@dataclass(frozen=True)
class Window:
    """The moments a base backup and the archive's WAL can recover to: [earliest, latest).

    Either end is None when it could not be learnt up front (the server's own checks still
    hold then)."""

    earliest: datetime | None  # the base backup's end: the last commit it may contain
    latest: datetime | None  # the last commit (or abort) the archive holds

    def describe(self) -> str:
        low = self.earliest.isoformat() if self.earliest else "the base backup's end"
        high = self.latest.isoformat() if self.latest else "the archive's end"
        return f"from {low} to before {high}"

    def check(self, target: RecoveryTarget) -> None:
        """Raise ConfigurationError when `target` lies outside the window."""
        moment = target.moment
        if moment is None:
            return
        if self.earliest is not None and moment < self.earliest:
            raise ConfigurationError(
                f"--to-time {moment.isoformat()} is before the base backup's end "
                f"({self.earliest.isoformat()}): the restorable window is {self.describe()}; "
                "choose a later time or an earlier base backup")
        if self.latest is not None and moment >= self.latest:
            raise ConfigurationError(
                f"--to-time {moment.isoformat()} is at or after the last archived commit "
                f"({self.latest.isoformat()}): the restorable window is {self.describe()}; "
                "use --to-time latest for everything the archive holds")

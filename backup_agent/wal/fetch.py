"""Fetch WAL from the archive ahead of replay: several threads, in order, bounded, proven.

The prefetcher keeps the segments from the one replay last asked for up to `ahead`
segments further in a local directory, each downloaded and proven (`prove.fetch_proven`:
signature, decryption, gzip, size, SHA-256) by one of `workers` threads. A file appears
under its own name only once proven (and, when the server runs as another user, once it
is theirs): whoever copies it never sees a half-written or unproven file. Segments replay
has passed are deleted, so the directory holds at most `ahead` + 2 segments.

It follows the timeline plan (`timelines`): each segment number is read from the timeline
the history says. At the first missing segment it stops and says what the gap is: the end
of the archive, or a hole (a later segment exists on one of the plan's timelines), which a
restore must never mistake for the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from backup_agent.model.errors import BackupAgentError, SourceNotFoundError
from backup_agent.physical.handout import Offer
from backup_agent.wal.history import WalArchive
from backup_agent.wal.names import HISTORY_PATTERN, parse_wal_name, timeline_prefix
from backup_agent.wal.prove import fetch_proven
from backup_agent.wal.timelines import TimelinePlan

log = logging.getLogger(__name__)

LATER_PAGE = 100  # keys listed at a time when looking past a missing segment
STAGING = ".fetching"  # proven files wait here until they are the server's


@dataclass(frozen=True)
class Gap:
    """Where the prefetcher stopped: the first segment it could not hand out."""

    segment: int
    name: str
    hole: bool  # a later segment exists: WAL is missing in the middle of the archive
    later: str | None = None  # the first later file found, for the message
    error: BackupAgentError | None = None  # not missing but unusable (unproven, S3 down)

    def describe(self) -> str:
        if self.error is not None:
            return f"WAL segment {self.name} could not be used: {self.error}"
        if self.hole:
            return (f"WAL segment {self.name} is missing from the archive while {self.later} "
                    "exists: the archive has a hole, so nothing after it can be replayed")
        return f"the archive ends before WAL segment {self.name}"


class Prefetcher:
    """Fetch `plan`'s segments from `first` on into `directory`; use as a context manager."""

    def __init__(self, archive: WalArchive, plan: TimelinePlan, directory: Path, first: int,
                 *, workers: int = 4, ahead: int = 8,
                 owner: tuple[int, int] | None = None) -> None:
        self.archive, self.plan, self.directory = archive, plan, directory
        self.ahead, self.owner = max(1, ahead), owner
        self._first = self._base = first
        self._ready: set[int] = set()
        self._busy: set[int] = set()
        self.gap: Gap | None = None
        self._closed = False
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"wal-fetch-{index}",
                                          daemon=True) for index in range(max(1, workers))]
        (directory / STAGING).mkdir(mode=0o700, exist_ok=True)

    def __enter__(self) -> Prefetcher:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop fetching; wait for the downloads under way (each bounded by S3's timeouts)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def want(self, segment: int) -> None:
        """Replay has reached `segment`: fetch from there on, forget what lies before it."""
        with self._changed:
            if segment != self._base:
                self._base = segment
                passed = {number for number in self._ready if number < segment - 1}
                self._ready -= passed
                self._changed.notify_all()
            else:
                passed = set()
        for number in passed:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / self.plan.name_of(number)).unlink()

    def offer(self, name: str) -> Offer:
        """Answer replay's request for WAL file `name` (and move the window to it)."""
        if HISTORY_PATTERN.match(name):
            return Offer.READY if (self.directory / name).is_file() else Offer.NONE
        number = self.plan.number_of(name)
        if number is None or number < self._first:
            return Offer.NONE
        self.want(number)
        with self._changed:
            if number in self._ready:
                return Offer.READY
            if self.gap is not None and number >= self.gap.segment:
                # Replay needs what is past a hole or an unusable segment: it must stop,
                # not end there (and perhaps promote).
                return Offer.REFUSE if self.gap.hole or self.gap.error else Offer.NONE
            return Offer.WAIT

    def problem(self) -> str | None:
        """Why replay cannot go on past the gap, when it is not simply the archive's end."""
        gap = self.gap
        return gap.describe() if gap is not None and (gap.hole or gap.error) else None

    def wait_for(self, segment: int, timeout: float) -> Path:
        """Return the path of `segment` once fetched; raise the gap's error (or
        SourceNotFoundError naming the gap) if it never will be, TimeoutError after
        `timeout` seconds. The window moves to `segment` only if it lies outside."""
        if not self._base <= segment < self._base + self.ahead:
            self.want(segment)
        with self._changed:
            if not self._changed.wait_for(lambda: segment in self._ready or self._past_gap(
                    segment), timeout=timeout):
                raise TimeoutError(f"WAL segment {self.plan.name_of(segment)} was not fetched "
                                   f"within {timeout:.0f} s")
            if segment in self._ready:
                return self.directory / self.plan.name_of(segment)
            assert self.gap is not None
            raise self.gap.error or SourceNotFoundError(self.gap.describe())

    def _past_gap(self, segment: int) -> bool:
        return self.gap is not None and segment >= self.gap.segment

    def _next(self) -> int | None:
        """The lowest segment of the window neither fetched nor being fetched (lock held)."""
        for number in range(self._base, self._base + self.ahead):
            if self.gap is not None and number >= self.gap.segment:
                return None
            if number not in self._ready and number not in self._busy:
                return number
        return None

    def _work(self) -> None:
        while True:
            with self._changed:
                number = self._next()
                while number is None and not self._closed:
                    self._changed.wait(timeout=0.5)
                    number = self._next()
                if self._closed:
                    return
                assert number is not None
                self._busy.add(number)
            try:
                self._fetch(number)
                outcome: Gap | None = None
            except SourceNotFoundError:
                outcome = self._gap_at(number)
            except BackupAgentError as error:
                outcome = Gap(segment=number, name=self.plan.name_of(number), hole=False,
                              error=error)
            except Exception as error:  # noqa: BLE001 - kept and raised to the restore
                outcome = Gap(segment=number, name=self.plan.name_of(number), hole=False,
                              error=BackupAgentError(f"{type(error).__name__}: {error}"))
            with self._changed:
                self._busy.discard(number)
                if outcome is None:
                    self._ready.add(number)
                elif self.gap is None or outcome.segment < self.gap.segment:
                    self.gap = outcome
                    # The archive's end is where every recovery stops: said only with --debug.
                    plain_end = outcome.error is None and not outcome.hole
                    log.log(logging.DEBUG if plain_end else logging.INFO, "%s",
                            outcome.describe())
                self._changed.notify_all()

    def _fetch(self, number: int) -> None:
        timeline, name = self.plan.timeline_of(number), self.plan.name_of(number)
        staged = self.directory / STAGING / name
        fetch_proven(self.archive.store, self.archive.key(timeline, name), staged,
                     vouch=self.archive.vouch, identities=self.archive.identities)
        if self.owner is not None:
            os.chown(staged, *self.owner)
        staged.rename(self.directory / name)
        log.debug("fetched and proved %s", name)

    def _gap_at(self, number: int) -> Gap:
        """Return the gap at missing segment `number`: a hole when any later segment of
        the plan's timelines (this one or newer) is in the archive."""
        timeline, name = self.plan.timeline_of(number), self.plan.name_of(number)
        store = self.archive.store
        for later_timeline in (t for t in self.plan.timelines() if t >= timeline):
            prefix = store.prefix + timeline_prefix(self.archive.system_identifier,
                                                    later_timeline)
            after = name if later_timeline == timeline else f"{later_timeline:08X}.history"
            while keys := store.keys_after(prefix, after, limit=LATER_PAGE):
                for key in keys:
                    # Only a proven later segment makes a hole: planted ones are absent
                    # (and cannot hide a genuine one: every later key is looked at).
                    wal = parse_wal_name(key.rpartition("/")[2])
                    if wal is not None and wal.kind == "segment" \
                            and self.archive.proven(later_timeline, wal.name):
                        return Gap(segment=number, name=name, hole=True, later=wal.name)
                after = keys[-1].rpartition("/")[2]
        return Gap(segment=number, name=name, hole=False)

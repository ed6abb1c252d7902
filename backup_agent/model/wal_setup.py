"""One step of `wal setup`: a server change the WAL stream needs, done or to do."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SLOT_KEEP = "8GB"  # what the slot may hold back before the server drops it


@dataclass(frozen=True)
class SetupStep:
    what: str  # one line: the change and why
    needed: bool  # False: the server already has it
    sql: tuple[str, ...] = ()  # what --yes runs; empty: a human must act (see `hint`)
    hint: str | None = None
    seen: bool = True  # False: the agent cannot see it (pg_hba.conf): a human checks it

    @property
    def human(self) -> bool:
        return self.needed and not self.sql

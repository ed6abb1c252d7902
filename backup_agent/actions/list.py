"""`backup-agent list [local|s3|all]`: every backup we can see, newest first, one row each.

A backup that is both on disk and in S3 is one row, `local+s3`, with its path and its S3
key; `--summary` counts them per place and names the local backups missing from S3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backup_agent.catalog import Catalog
from backup_agent.model.backup import BackupRef, Where
from backup_agent.model.settings import Settings


@dataclass(frozen=True)
class ListedBackup:
    """One backup and the places it is in (the same name locally and in S3)."""

    name: str
    created: datetime
    local: BackupRef | None = None
    s3: BackupRef | None = None

    @property
    def refs(self) -> list[BackupRef]:
        return [ref for ref in (self.local, self.s3) if ref is not None]

    @property
    def where(self) -> str:
        return "+".join(ref.where.value for ref in self.refs)

    @property
    def size(self) -> int:
        return self.refs[0].size

    @property
    def has_checksum(self) -> bool:
        return all(ref.has_checksum for ref in self.refs)

    @property
    def complete(self) -> bool:
        return all(ref.complete for ref in self.refs)

    def to_dict(self) -> dict[str, Any]:
        first = self.refs[0]
        return {"name": self.name, "where": self.where,
                "places": [ref.where.value for ref in self.refs],
                "location": first.location,
                "path": str(self.local.path) if self.local and self.local.path else None,
                "key": self.s3.key if self.s3 else None,
                "url": self.s3.location if self.s3 else None,
                "size_bytes": self.size, "created": self.created.isoformat(),
                "has_checksum": self.has_checksum,
                "signed": all(ref.has_signature for ref in self.refs),
                "complete": self.complete,
                "local": self.local.to_dict() if self.local else None,
                "s3": self.s3.to_dict() if self.s3 else None}


@dataclass(frozen=True)
class PlaceSummary:
    place: str
    count: int
    total_bytes: int
    oldest: BackupRef | None
    newest: BackupRef | None

    def to_dict(self) -> dict[str, Any]:
        return {"place": self.place, "count": self.count, "total_bytes": self.total_bytes,
                "oldest": self.oldest.name if self.oldest else None,
                "newest": self.newest.name if self.newest else None}


@dataclass(frozen=True)
class ListResult:
    where: Where
    backups: list[ListedBackup]
    summary: list[PlaceSummary] | None = None
    # Complete local backups with no copy in S3; None when S3 was not listed.
    missing_from_s3: list[str] | None = None
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"where": self.where.value,
                                "backups": [backup.to_dict() for backup in self.backups]}
        if self.summary is not None:
            data["summary"] = {"places": [place.to_dict() for place in self.summary],
                               "missing_from_s3": self.missing_from_s3}
        return data


def merge(refs: list[BackupRef]) -> list[ListedBackup]:
    """One entry per name, newest first (`refs` is newest first)."""
    merged: dict[str, ListedBackup] = {}
    for ref in refs:
        entry = merged.get(ref.name, ListedBackup(name=ref.name, created=ref.created))
        if ref.where is Where.LOCAL and entry.local is None:
            entry = ListedBackup(name=entry.name, created=entry.created, local=ref, s3=entry.s3)
        elif ref.where is Where.S3 and entry.s3 is None:
            entry = ListedBackup(name=entry.name, created=entry.created, local=entry.local, s3=ref)
        merged[ref.name] = entry
    return list(merged.values())


def summarize(refs: list[BackupRef], place: Where) -> PlaceSummary:
    there = [ref for ref in refs if ref.where is place]
    by_age = sorted(there, key=lambda ref: ref.created)
    return PlaceSummary(place=place.value, count=len(there),
                        total_bytes=sum(ref.size for ref in there),
                        oldest=by_age[0] if by_age else None,
                        newest=by_age[-1] if by_age else None)


def run_list(settings: Settings, where: Where, *, summary: bool = False) -> ListResult:
    """Return the backups in the chosen places, newest first, one entry per backup."""
    listing = Catalog(settings).listing(where)
    backups = merge(listing.backups)
    if not summary:
        return ListResult(where=where, backups=backups, warnings=listing.warnings)
    s3_listed = listing.s3_listed
    places = [place for place, shown in ((Where.LOCAL, where is not Where.S3),
                                         (Where.S3, s3_listed)) if shown]
    missing = ([backup.name for backup in backups
                if backup.local is not None and backup.local.complete and backup.s3 is None]
               if s3_listed and where is Where.ALL else None)
    return ListResult(where=where, backups=backups,
                      summary=[summarize(listing.backups, place) for place in places],
                      missing_from_s3=missing, warnings=listing.warnings)

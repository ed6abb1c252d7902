"""`verify --wal`'s content level: every listed object's metadata and signature.

One HEAD per object: its metadata must state this format's facts, signed by a trusted key
for this very key (`objects.signed_facts`). What passes is the inventory the other levels
use; what does not is a finding and counts as absent. History files and descriptors are
small: they are read back proven here, so the names level can follow switch points and
know each base backup's WAL range.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backup_agent.model.errors import BackupAgentError, SourceNotFoundError
from backup_agent.model.wal_report import Finding, Level
from backup_agent.physical.descriptor import Descriptor, parse_descriptor
from backup_agent.wal.archive import (
    DEFAULT_SEGMENT_BYTES,
    ClusterArchive,
    HistoryEntry,
    WalObject,
    parse_history,
)
from backup_agent.wal.names import WalKind
from backup_agent.wal.objects import Facts, Vouch, signed_facts
from backup_agent.wal.prove import read_proven

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Store


@dataclass
class Inventory:
    """The objects that passed the content level, and what they say."""

    facts: dict[str, Facts] = field(default_factory=dict)  # WAL file name -> signed facts
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    histories: dict[int, list[HistoryEntry]] = field(default_factory=dict)
    descriptors: dict[str, Descriptor] = field(default_factory=dict)  # by stamp
    objects_checked: int = 0

    def segments(self) -> set[str]:
        return {name for name in self.facts if not name.endswith(".history")}


def _finding(item: WalObject, kind: str, message: str) -> Finding:
    segment = item.file.name if item.file.kind is WalKind.SEGMENT else None
    return Finding(level=Level.CONTENT, kind=kind, message=message, key=item.key,
                   timeline=item.file.timeline, first_segment=segment, last_segment=segment)


def check_content(store: S3Store, cluster: ClusterArchive,
                  vouch: Vouch | None) -> tuple[Inventory, list[Finding]]:
    """Return the inventory of trusted objects and a finding for every other one. `vouch`
    None: no key is trusted, only the metadata's form is checked (the caller says so)."""
    inventory, findings = Inventory(), []
    for item in sorted(cluster.wal.values(), key=lambda wal: (wal.file.timeline, wal.file.name)):
        head = store.head(store.prefix + item.key)
        inventory.objects_checked += 1
        if head is None:  # deleted since the listing: the names level sees it missing
            continue
        try:
            inventory.facts[item.file.name] = signed_facts(item.key, head.get("Metadata", {}),
                                                           vouch)
        except BackupAgentError as error:
            kind = "signature" if "signed" in str(error) else "metadata"
            findings.append(_finding(item, kind, str(error)))
    findings += _odd_sizes(cluster, inventory)
    findings += _histories(store, cluster, inventory, vouch)
    findings += _descriptors(store, cluster, inventory, vouch)
    return inventory, findings


def _odd_sizes(cluster: ClusterArchive, inventory: Inventory) -> list[Finding]:
    """Every segment has the cluster's segment size (the most common one): another is not a
    whole segment, and is not used."""
    sizes = Counter(facts.size for name, facts in inventory.facts.items()
                    if not name.endswith(".history"))
    if not sizes:
        return []
    inventory.segment_bytes = sizes.most_common(1)[0][0]
    findings = []
    for name in sorted(inventory.segments()):
        if inventory.facts[name].size != inventory.segment_bytes:
            findings.append(_finding(cluster.wal[name], "content",
                                     f"{cluster.wal[name].key} holds {inventory.facts[name].size}"
                                     f" bytes, not a whole {inventory.segment_bytes}-byte "
                                     "segment"))
            del inventory.facts[name]
    return findings


def _histories(store: S3Store, cluster: ClusterArchive, inventory: Inventory,
               vouch: Vouch | None) -> list[Finding]:
    findings = []
    for timeline in cluster.timelines():
        item = cluster.history(timeline)
        if item is None or item.file.name not in inventory.facts:
            continue
        try:
            text = read_proven(store, item.key, vouch=vouch).decode("utf-8")
            inventory.histories[timeline] = parse_history(text)
        except (BackupAgentError, UnicodeDecodeError, ValueError) as error:
            findings.append(_finding(item, "history", f"{item.key} cannot be used: {error}"))
            del inventory.facts[item.file.name]
    return findings


def _descriptors(store: S3Store, cluster: ClusterArchive, inventory: Inventory,
                 vouch: Vouch | None) -> list[Finding]:
    findings = []
    for stamp, base in sorted(cluster.base_backups.items()):
        key = base.descriptor_key
        if key is None:  # still being made, or abandoned: never used, not a finding
            continue
        inventory.objects_checked += 1
        try:
            descriptor = parse_descriptor(read_proven(store, key, vouch=vouch))
        except SourceNotFoundError:
            continue
        except (BackupAgentError, ValueError, TypeError) as error:
            findings.append(Finding(level=Level.CONTENT, kind="descriptor", key=key,
                                    message=f"base backup {stamp}: {error}"))
            continue
        if descriptor.system_identifier != cluster.system_identifier \
                or descriptor.tar.key != base.keys.get("base.tar"):
            findings.append(Finding(level=Level.CONTENT, kind="descriptor", key=key,
                                    message=f"base backup {stamp}: its descriptor names "
                                            "another cluster or tar"))
            continue
        inventory.descriptors[stamp] = descriptor
    return findings

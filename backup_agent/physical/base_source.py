"""Where a cluster restore's base backup comes from: the seam for `base/` objects in S3.

`BaseSource` is what recovery needs of a base backup. Today's one implementation is
`LocalBaseBackup`, the output directory of `pg_basebackup -Fp` (or `-Ft`: base.tar, and
pg_wal.tar when WAL was included) on this machine. The S3 base backups `backup-agent
base-backup` writes (`base/<system identifier>/<stamp>/…` with a signed descriptor) plug
in as a second implementation: the descriptor holds the start and end LSN, timeline and
time, and `extract_into` streams the proven tar into the directory.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from backup_agent.model.errors import ConfigurationError
from backup_agent.physical.basebackup import label_start
from backup_agent.physical.wal_files import parse_lsn

_LABEL_TIME = re.compile(r"^START TIME: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)", re.MULTILINE)


class BaseSource(Protocol):
    """A base backup a cluster restore starts from."""

    @property
    def start_lsn(self) -> int: ...

    @property
    def start_timeline(self) -> int: ...

    @property
    def end_lsn(self) -> int: ...

    @property
    def start_time(self) -> datetime | None:
        """When the backup started (every commit before its start LSN is older)."""
        ...

    @property
    def end_time(self) -> datetime | None:
        """When the backup ended (after its last commit); None: learnt from the WAL."""
        ...

    @property
    def trusted(self) -> bool:
        """True only when its bytes were proven with a trusted signature."""
        ...

    def describe(self) -> str: ...

    def extract_into(self, directory: Path, owner: tuple[int, int]) -> None:
        """Write the backup's files into empty `directory`, owned by `owner`."""
        ...


@dataclass(frozen=True)
class LocalBaseBackup:
    """A pg_basebackup output directory on this machine (plain, or tar format)."""

    directory: Path
    start_lsn: int
    start_timeline: int
    end_lsn: int
    start_time: datetime | None = None
    end_time: datetime | None = None  # pg_basebackup records none: found from the WAL
    trusted: bool = False  # nothing signed it

    def describe(self) -> str:
        return f"the base backup in {self.directory}"

    def extract_into(self, directory: Path, owner: tuple[int, int]) -> None:
        base_tar = self.directory / "base.tar"
        if base_tar.is_file():
            _untar(base_tar, directory)
            if (self.directory / "pg_wal.tar").is_file():
                _untar(self.directory / "pg_wal.tar", directory / "pg_wal")
        else:
            _copy_tree(self.directory, directory)
        for root, directories, files in os.walk(directory):
            for name in [*directories, *files]:
                os.chown(Path(root) / name, *owner, follow_symlinks=False)


def local_base_backup(directory: Path) -> LocalBaseBackup:
    """Read a pg_basebackup output directory's backup_label and backup_manifest; raise
    ConfigurationError when it is not one."""
    label = _label_text(directory)
    manifest = directory / "backup_manifest"
    started = label_start(label)
    if started is None or not manifest.is_file():
        raise ConfigurationError(f"{directory} is not a pg_basebackup output (backup_label and "
                                 "backup_manifest are needed): pass the directory "
                                 "pg_basebackup -D wrote (-Fp or -Ft, manifest on)")
    try:
        ranges = json.loads(manifest.read_text())["WAL-Ranges"]
        end = max(parse_lsn(item["End-LSN"]) for item in ranges)
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(f"{manifest} has no readable WAL-Ranges: it is not a "
                                 "backup manifest pg_basebackup wrote") from None
    return LocalBaseBackup(directory=directory, start_lsn=parse_lsn(started[0]),
                           start_timeline=started[1], end_lsn=end,
                           start_time=_start_time(label))


def _start_time(label: str) -> datetime | None:
    """backup_label's START TIME, rounded up to the next second (it is written to the
    second), when its zone is UTC; None otherwise (then the WAL alone bounds the window)."""
    found = _LABEL_TIME.search(label)
    if found is None or found.group(2) not in ("UTC", "GMT", "Etc/UTC"):
        return None
    moment = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return moment + timedelta(seconds=1)


def _label_text(directory: Path) -> str:
    if (directory / "backup_label").is_file():
        return (directory / "backup_label").read_text(errors="replace")
    if (directory / "base.tar").is_file():
        with tarfile.open(directory / "base.tar") as tar:
            member = tar.extractfile("backup_label")
            if member is not None:
                return member.read().decode(errors="replace")
    raise ConfigurationError(f"{directory} holds neither backup_label nor base.tar: pass the "
                             "directory pg_basebackup -D wrote")


def _untar(path: Path, directory: Path) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    with tarfile.open(path) as tar:
        extract_cluster_tar(tar, directory, what=str(path))


def _outside(what: str, name: str, kind: str) -> ConfigurationError:
    return ConfigurationError(
        f"{what} holds {name!r}, a {kind}: a base backup is files and directories only "
        "(a link or device would reach outside the cluster being built; tablespaces are not "
        "supported); nothing was restored")


def extract_cluster_tar(tar: tarfile.TarFile, directory: Path, *, what: str) -> None:
    """Extract a base backup's tar into `directory`: every member is checked first, and
    only regular files and directories are taken, inside `directory` (tarfile's `data`
    filter, less links: no symlink, hard link, device or FIFO, which as root would hand
    the cluster's owner files outside it)."""
    members = tar.getmembers()
    for member in members:
        if member.issym() or member.islnk():
            raise _outside(what, member.name, f"link to {member.linkname!r}")
        if not (member.isfile() or member.isdir()):
            raise _outside(what, member.name, "special file")
    tar.extractall(directory, members=members, filter="data")


def _copy_tree(source: Path, target: Path) -> None:
    import shutil

    for root, directories, files in os.walk(source):
        for name in [*directories, *files]:
            path = Path(root) / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise _outside(str(source), str(path.relative_to(source)),
                               "link" if path.is_symlink() else "special file")
    for entry in source.iterdir():
        if entry.name == "backup_manifest":
            continue  # the restored cluster has no use for it
        destination = target / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, destination, symlinks=True)
        else:
            shutil.copy2(entry, destination, follow_symlinks=False)

"""Make backup directories with history: older agent backups and other people's files."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OLDEST = datetime(2026, 1, 1, 2, 0, 0, tzinfo=UTC)


def write_backup(directory: Path, moment: datetime, *, with_manifest: bool = True) -> str:
    """Write a small but real-looking backup (data, .sha256, manifest) made at `moment`."""
    name = f"db_backup_{moment:%Y%m%d_%H%M%S}.sql.gz"
    data = gzip.compress(f"-- dump of {name}\n-- PostgreSQL database dump complete\n".encode())
    (directory / name).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (directory / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    if with_manifest:
        (directory / f"{name}.manifest.json").write_text(json.dumps(
            {"tool": "backup-agent", "name": name, "sha256": digest, "size_bytes": len(data)}))
    return name


def fabricate_agent_backups(directory: Path, *, count: int) -> list[str]:
    """Write `count` daily agent backups, oldest first, and return their names."""
    return [write_backup(directory, OLDEST + timedelta(days=day)) for day in range(count)]


def snapshot_files(directory: Path) -> dict[str, bytes | str]:
    """Return every entry under `directory` with its content (or link target / "dir")."""
    entries: dict[str, bytes | str] = {}
    for path in sorted(directory.rglob("*")):
        relative = str(path.relative_to(directory))
        if path.name == ".backup-agent.lock":
            continue
        if path.is_symlink():
            entries[relative] = f"-> {path.readlink()}"
        elif path.is_dir():
            entries[relative] = "dir"
        else:
            entries[relative] = path.read_bytes()
    return entries


def rewrite_backup(directory: Path, name: str, change: Callable[[bytes], bytes], *,
                   later_by: timedelta = timedelta(hours=1),
                   change_globals: Callable[[dict[str, Any]], dict[str, Any]] | None = None
                   ) -> str:
    """Write a new, internally consistent backup (fresh .sha256) whose SQL is `change`d,
    and whose (unencrypted) globals file is copied, or rewritten by `change_globals`."""
    source = directory / name
    moment = datetime.strptime(name[10:25], "%Y%m%d_%H%M%S").replace(tzinfo=UTC) + later_by
    new_name = f"db_backup_{moment:%Y%m%d_%H%M%S}.sql.gz"
    data = gzip.compress(change(gzip.decompress(source.read_bytes())))
    (directory / new_name).write_bytes(data)
    (directory / f"{new_name}.sha256").write_text(
        f"{hashlib.sha256(data).hexdigest()}  {new_name}\n")
    manifest = json.loads((directory / f"{name}.manifest.json").read_text())
    manifest.update(name=new_name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    globals_file = directory / f"{name}.globals"
    if globals_file.exists():
        stored = globals_file.read_bytes()
        if change_globals is not None:
            content = change_globals(json.loads(gzip.decompress(stored)))
            stored = gzip.compress(json.dumps(content).encode())
        (directory / f"{new_name}.globals").write_bytes(stored)
        manifest["globals"] = {**manifest["globals"],
                               "sha256": hashlib.sha256(stored).hexdigest(),
                               "size_bytes": len(stored)}
    (directory / f"{new_name}.manifest.json").write_text(json.dumps(manifest))
    return new_name


def flip_a_bit(path: Path) -> None:
    """Flip one bit in the middle of a file, as failing storage would."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04
    path.write_bytes(bytes(data))

"""The server-side programs of a cluster restore, as data: pure functions, tested by equality.

Nothing here runs a process (`backup_agent.execute` does). The recovering server is started
with every setting the restore needs on its command line (`-c`), so nothing is written into
the cluster's configuration files and nothing needs removing afterwards: a restart without
the agent starts the cluster with its own settings (see `recovery`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# Every process of a restore speaks C and UTC: messages and times the agent reads back.
ENVIRONMENT = {"LC_ALL": "C", "LC_MESSAGES": "C", "TZ": "UTC"}


def program(bin_directory: Path | None, name: str) -> str:
    return str(bin_directory / name) if bin_directory else name


def make_controldata_command(bin_directory: Path | None, data_directory: Path) -> list[str]:
    return [program(bin_directory, "pg_controldata"), "-D", str(data_directory)]


def make_waldump_command(bin_directory: Path | None, wal_directory: Path, first: str,
                         last: str) -> list[str]:
    """pg_waldump of the transaction records from segment `first` through `last`."""
    return [program(bin_directory, "pg_waldump"), "--path", str(wal_directory),
            "--rmgr=Transaction", first, last]


def make_server_command(bin_directory: Path | None, data_directory: Path,
                        settings: Mapping[str, str]) -> list[str]:
    """The postmaster itself (not pg_ctl start), so that it is the agent's own child."""
    command = [program(bin_directory, "postgres"), "-D", str(data_directory)]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    return command


def make_stop_command(bin_directory: Path | None, data_directory: Path, *,
                      timeout_seconds: int) -> list[str]:
    """A clean shutdown: `fast` ends sessions and writes a shutdown checkpoint."""
    return [program(bin_directory, "pg_ctl"), "stop", "-D", str(data_directory), "-m", "fast",
            "-w", "-t", str(timeout_seconds)]


def private_settings(*, socket_directory: Path, port: int, hba_file: Path) -> dict[str, str]:
    """Settings that keep the server to the agent: no TCP, a socket in a private directory,
    trust only there, no archiving of its own (it must not write into anyone's archive)."""
    return {"listen_addresses": "", "unix_socket_directories": str(socket_directory),
            "port": str(port), "hba_file": str(hba_file), "archive_mode": "off",
            "lc_messages": "C", "log_timezone": "UTC", "logging_collector": "off",
            "log_destination": "stderr", "hot_standby": "on"}


def recovery_settings(*, restore_command: str, target_time: str | None,
                      timeline: int) -> dict[str, str]:
    """Recovery to `target_time` (inclusive, pausing there), or to the archive's end."""
    settings = {"restore_command": restore_command,
                "recovery_target_timeline": str(timeline)}
    if target_time is not None:
        settings |= {"recovery_target_time": target_time,
                     "recovery_target_inclusive": "on", "recovery_target_action": "pause"}
    return settings

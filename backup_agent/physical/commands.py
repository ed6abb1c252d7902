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


def make_amcheck_command(bin_directory: Path | None, connection: list[str]) -> list[str]:
    """pg_amcheck of every table and B-tree index in every database (a drilled cluster is a
    throwaway: the amcheck extension is created where it is missing)."""
    return [program(bin_directory, "pg_amcheck"), *connection, "--all", "--install-missing",
            "--no-password"]


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


def private_settings(*, data_directory: Path, socket_directory: Path, port: int,
                     hba_file: Path, major: int) -> dict[str, str]:
    """Settings that keep the server to the agent: no TCP, a socket in a private directory,
    trust only there, no archiving of its own (it must not write into anyone's archive)."""
    # data_directory: -D names only where postgresql.conf is, which may name another
    return {"data_directory": str(data_directory), "listen_addresses": "",
            "unix_socket_directories": str(socket_directory),
            "port": str(port), "hba_file": str(hba_file), "archive_mode": "off",
            "lc_messages": "C", "log_timezone": "UTC", "logging_collector": "off",
            "log_destination": "stderr", "log_min_messages": "warning", "hot_standby": "on",
            # the source's huge pages are reserved for it (on this host, likely held by it)
            "huge_pages": "off",
            # a server that lives minutes: no ANALYZE of its own running tables' index
            # expressions (their owners' functions) next to the dump and the checks
            "autovacuum": "off",
            # no subscription of the source's starts: its apply worker would take the
            # publisher's slot (production's) and write what came after T into the cluster
            "max_logical_replication_workers": "0", **untrusted_settings(major)}


def untrusted_settings(major: int) -> dict[str, str]:
    """UNTRUSTED_SETTINGS this server knows (event_triggers exists from PostgreSQL 17)."""
    return {name: value for name, value in UNTRUSTED_SETTINGS.items()
            if major >= SETTINGS_SINCE.get(name, 0)}


def session_options(major: int) -> str:
    """SESSION_OPTIONS this server knows."""
    if major >= SETTINGS_SINCE["event_triggers"]:
        return SESSION_OPTIONS
    return SESSION_OPTIONS.replace(" -c event_triggers=off", "")


# The base backup's postgresql.conf and postgresql.auto.conf are the source's: while the
# agent recovers, nothing in them may run a command, load code or write a file on this host,
# stream WAL from elsewhere, or move the recovery's end. The command line beats both files.
UNTRUSTED_SETTINGS = {
    "recovery_end_command": "", "archive_cleanup_command": "", "archive_command": "",
    "archive_library": "", "external_pid_file": "", "ssl": "off",
    "ssl_passphrase_command": "", "shared_preload_libraries": "",
    "session_preload_libraries": "", "local_preload_libraries": "", "jit": "off",
    "primary_conninfo": "", "primary_slot_name": "", "recovery_min_apply_delay": "0",
    "event_triggers": "off"}
SETTINGS_SINCE = {"event_triggers": 17}
RECOVERY_TARGETS = ("recovery_target", "recovery_target_lsn", "recovery_target_name",
                    "recovery_target_time", "recovery_target_xid")
# What the agent's own sessions set (a role's or database's settings come after the
# command line's, a client's after theirs).
SESSION_OPTIONS = ("-c search_path=pg_catalog -c session_preload_libraries= "
                   "-c local_preload_libraries= -c event_triggers=off "
                   "-c default_transaction_read_only=off -c statement_timeout=0")


def recovery_settings(*, restore_command: str, target_time: str | None,
                      timeline: int) -> dict[str, str]:
    """Recovery to `target_time` (inclusive, pausing there), or to the archive's end."""
    # None of the source's targets: emptied first (PostgreSQL refuses a second target set
    # after one, even an empty one), ours last.
    unused = [name for name in RECOVERY_TARGETS
              if target_time is None or name != "recovery_target_time"]
    settings = {"restore_command": restore_command,
                "recovery_target_timeline": str(timeline), **dict.fromkeys(unused, "")}
    if target_time is not None:
        settings |= {"recovery_target_time": target_time,
                     "recovery_target_inclusive": "on", "recovery_target_action": "pause"}
    return settings

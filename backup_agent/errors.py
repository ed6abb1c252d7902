"""Project exceptions: one readable sentence each, and the exit code the CLI ends with.

Deep code raises these; only `cli.py` prints them. Every message names the problem and the
fix, so that the one line an operator sees at 3 a.m. is enough to act on.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes of `backup-agent` (the README's table mirrors this)."""

    OK = 0  # also "warning": the backup exists locally but S3 was not configured
    UNEXPECTED = 1  # a bug or an unforeseen failure; rerun with --debug
    USAGE = 2  # bad flag, bad value, bad env file (click uses 2 for usage errors too)
    DATABASE = 3  # PostgreSQL unreachable, wrong password, missing database, dump failed
    LOCAL_STORAGE = 4  # BACKUP_DIR missing, not writable, disk full
    S3 = 5  # bucket missing, access denied, endpoint unreachable, upload not confirmed
    LOCKED = 6  # another backup-agent run holds the lock on BACKUP_DIR
    TOOL_MISSING = 7  # pg_dump/psql/docker not found or too old for the server
    INTERRUPTED = 130  # SIGINT/SIGTERM: cleaned up and stopped


class BackupAgentError(Exception):
    """Base class: `str(error)` is the one line shown to the operator."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class ConfigurationError(BackupAgentError):
    exit_code = ExitCode.USAGE


class DatabaseError(BackupAgentError):
    exit_code = ExitCode.DATABASE


class LocalStorageError(BackupAgentError):
    exit_code = ExitCode.LOCAL_STORAGE


class S3Error(BackupAgentError):
    exit_code = ExitCode.S3


class LockedError(BackupAgentError):
    exit_code = ExitCode.LOCKED


class ToolMissingError(BackupAgentError):
    exit_code = ExitCode.TOOL_MISSING


class InterruptedRunError(BackupAgentError):
    exit_code = ExitCode.INTERRUPTED

"""Project exceptions: one readable sentence each, and the exit code the CLI ends with.

Deep code raises these; only `cli/boundary.py` prints them. Every message names the problem and the
fix, so that the one line an operator sees at 3 a.m. is enough to act on.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


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
    VERIFICATION_FAILED = 8  # checksum mismatch, truncated/corrupt gzip, incomplete dump,
    #                          row counts differ from the manifest; nothing was restored
    NOT_FOUND = 9  # the backup to restore or verify does not exist
    RESTORE_FAILED = 10  # the SQL failed or the swap failed; the target database is unchanged
    STALE = 11  # status: the newest complete backup is older than --max-age, or there is none
    DOCTOR_FAILED = 12  # doctor: at least one check failed
    INTERRUPTED = 130  # SIGINT/SIGTERM: cleaned up and stopped


class BackupAgentError(Exception):
    """Base class: `str(error)` is the one line shown to the operator."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        # Machine-readable context for --json (e.g. which backups failed verification).
        self.details = details or {}
        # Warnings of the run that ended in this error, for the --json envelope.
        self.warned: list[str] = []


class ConfigurationError(BackupAgentError):
    exit_code = ExitCode.USAGE


class DatabaseError(BackupAgentError):
    exit_code = ExitCode.DATABASE


class LocalStorageError(BackupAgentError):
    exit_code = ExitCode.LOCAL_STORAGE


class S3Error(BackupAgentError):
    exit_code = ExitCode.S3


class ObjectExistsError(S3Error):
    """A create-only write found an object at its key: nothing was overwritten."""


class LockedError(BackupAgentError):
    exit_code = ExitCode.LOCKED


class ToolMissingError(BackupAgentError):
    exit_code = ExitCode.TOOL_MISSING


class VerificationError(BackupAgentError):
    exit_code = ExitCode.VERIFICATION_FAILED


class RestoreError(BackupAgentError):
    exit_code = ExitCode.RESTORE_FAILED


class SourceNotFoundError(BackupAgentError):
    exit_code = ExitCode.NOT_FOUND


class StaleBackupError(BackupAgentError):
    exit_code = ExitCode.STALE


class DoctorFailedError(BackupAgentError):
    exit_code = ExitCode.DOCTOR_FAILED


class CancelledError(BackupAgentError):
    """The operator said no: nothing was changed, and that is not a failure."""

    exit_code = ExitCode.OK


class InterruptedRunError(BackupAgentError):
    exit_code = ExitCode.INTERRUPTED

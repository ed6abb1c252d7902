"""Whether a signal asked this run to stop: process-wide, like the signal itself.

The SIGTERM handler raises InterruptedRunError wherever the main thread is, but where it
lands is chance: a library that catches every exception there swallows it (botocore catches
every exception raised while it sends an HTTP request, and retries the request). The handler
also records the signal here, and the agent's own loops and S3 calls ask again.
"""

from __future__ import annotations

import signal

from backup_agent.model.errors import InterruptedRunError

_stopped_by: list[int] = []  # the signal, once one came
# What a stopped run leaves, for its one line: a command that is not all-or-nothing says
# its own (set_stop_note).
_left = ["temporary files removed, nothing published"]


def set_stop_note(text: str) -> None:
    _left[:] = [text]


def interrupted(signal_number: int) -> InterruptedRunError:
    return InterruptedRunError(f"stopped by signal {signal.Signals(signal_number).name}: "
                               f"{_left[0]}")


def request_stop(signal_number: int) -> None:
    _stopped_by[:] = [signal_number]


def raise_if_stopped() -> bool:
    """Raise InterruptedRunError if a signal asked the run to stop; else return False (so it
    serves as a loop's `should_stop`)."""
    if _stopped_by:
        raise interrupted(_stopped_by[0])
    return False

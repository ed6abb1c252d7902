"""A SIGTERM while botocore sends a request stops the run: botocore catches every exception
raised during a send (the signal handler's too) and retries the request; the agent's
handler records the signal, and the store raises it before any retry."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from backup_agent.cli.boundary import raise_interrupted
from backup_agent.model import stopping
from backup_agent.model.errors import InterruptedRunError
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from testbed.s3 import S3Endpoint


@pytest.fixture
def handler() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        stopping._stopped_by.clear()


def test_a_sigterm_during_a_put_always_stops_it(handler: None, s3_endpoint: S3Endpoint,
                                                bucket: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    client = S3Store(S3Settings(bucket=bucket)).client
    body = b"x" * (30 * 1024 * 1024)
    for attempt in range(5):
        stopping._stopped_by.clear()
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        with pytest.raises(InterruptedRunError):
            client.put_object(Bucket=bucket, Key=f"signalled-{attempt}", Body=body)
        timer.join()

"""Notifications: a Slack-compatible webhook, or healthchecks-style pings (start/success/fail).

A notifier that is down, slow or wrong never blocks or fails the backup: every send has a
timeout and every problem is one warning line. The URL itself is a secret (a webhook URL
grants posting), so it is never logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections import deque

from backup_agent.model.settings import NotifyMode, NotifySettings

log = logging.getLogger(__name__)
TAIL_LINES = 40


class LogTail(logging.Handler):
    """Keep the last lines logged, to send with a failure."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def text(self) -> str:
        return "\n".join(self.lines)


def _send(settings: NotifySettings, url: str, body: bytes | None, content_type: str) -> None:
    # The scheme is checked when the settings are read: http(s) only.
    request = urllib.request.Request(  # noqa: S310
        url, data=body, method="POST" if body is not None else "GET",
        headers={"Content-Type": content_type, "User-Agent": "backup-agent"})
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as answer:  # noqa: S310 - the operator's URL
            answer.read(1024)
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        log.warning("could not send the notification (%s): the backup result is unaffected",
                    type(reason).__name__ if not isinstance(reason, str) else reason)


def notify_start(settings: NotifySettings) -> None:
    if settings.url and settings.mode is NotifyMode.HEALTHCHECKS:
        _send(settings, settings.url.rstrip("/") + "/start", None, "text/plain")


def notify_success(settings: NotifySettings, summary: str) -> None:
    if not settings.url:
        return
    if settings.mode is NotifyMode.HEALTHCHECKS:
        _send(settings, settings.url, summary.encode(), "text/plain")
    elif settings.on_success:
        _send(settings, settings.url, json.dumps({"text": f"✅ {summary}"}).encode(),
              "application/json")


def notify_failure(settings: NotifySettings, summary: str, tail: str) -> None:
    if not settings.url:
        return
    if settings.mode is NotifyMode.HEALTHCHECKS:
        _send(settings, settings.url.rstrip("/") + "/fail", f"{summary}\n\n{tail}".encode(),
              "text/plain")
    else:
        text = f"❌ {summary}\n```\n{tail}\n```"
        _send(settings, settings.url, json.dumps({"text": text}).encode(), "application/json")

"""Notifications reach a local HTTP server; a dead or slow notifier never fails a backup."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import run_agent


@dataclass
class Received:
    method: str
    path: str
    body: str


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    record = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode() if length else ""
            record.requests.append(Received(self.command, self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}/ping/abc123"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


def test_webhook_posts_failures_with_the_log_tail(agent_env: dict[str, str],
                                                  receiver: Receiver) -> None:
    environment = {**agent_env, "NOTIFY_URL": receiver.url}
    assert run_agent(["backup"], environment).returncode == 0
    assert receiver.requests == []  # failures only, by default
    failed = run_agent(["backup"], {**environment, "POSTGRES_PASSWORD": "wrong-one"})
    assert failed.returncode == 3
    [posted] = receiver.requests
    text = json.loads(posted.body)["text"]
    assert posted.method == "POST" and "backup-agent backup failed" in text
    assert "rejected the password" in text
    assert "wrong-one" not in text and agent_env["POSTGRES_PASSWORD"] not in text


def test_webhook_posts_successes_when_asked(agent_env: dict[str, str],
                                           receiver: Receiver) -> None:
    result = run_agent(["backup"], {**agent_env, "NOTIFY_URL": receiver.url,
                                    "NOTIFY_ON": "always"})
    assert result.returncode == 0
    [posted] = receiver.requests
    assert "backup-agent backup success" in json.loads(posted.body)["text"]


def test_healthchecks_pings_start_then_success_or_fail(agent_env: dict[str, str],
                                                       receiver: Receiver) -> None:
    environment = {**agent_env, "NOTIFY_URL": receiver.url, "NOTIFY_MODE": "healthchecks"}
    assert run_agent(["backup"], environment).returncode == 0
    assert [(request.method, request.path) for request in receiver.requests] == [
        ("GET", "/ping/abc123/start"), ("POST", "/ping/abc123")]
    receiver.requests.clear()
    assert run_agent(["backup"], {**environment, "POSTGRES_DB": "missing_db"}).returncode == 3
    assert [request.path for request in receiver.requests] == ["/ping/abc123/start",
                                                                "/ping/abc123/fail"]
    assert "does not exist" in receiver.requests[1].body


def test_a_dead_notifier_never_fails_the_backup(agent_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    result = run_agent(["backup"], {**agent_env, "NOTIFY_URL": dead, "NOTIFY_ON": "always"})
    assert result.returncode == 0, result.stderr
    assert "could not send the notification" in result.stderr
    assert dead not in result.stderr  # the URL is a secret


def test_a_hanging_notifier_times_out(agent_env: dict[str, str]) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        result = run_agent(["backup"], {**agent_env, "NOTIFY_URL": url, "NOTIFY_ON": "always",
                                        "NOTIFY_TIMEOUT": "1"})
    finally:
        silent.close()
    assert result.returncode == 0, result.stderr
    assert "could not send the notification" in result.stderr


def test_non_http_notify_url_is_refused(agent_env: dict[str, str]) -> None:
    result = run_agent(["backup"], {**agent_env, "NOTIFY_URL": "file:///etc/passwd"})
    assert result.returncode == 2 and "NOTIFY_URL must be an http(s) URL" in result.stderr

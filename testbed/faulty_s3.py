"""An HTTP proxy in front of moto's server that injects S3 faults on chosen requests.

The agent is pointed at the proxy through AWS_ENDPOINT_URL_S3, like any endpoint. A rule
decides, per request, whether to forward it, answer with an S3 error, or stall first.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case

    @property
    def is_upload_part(self) -> bool:
        return self.method == "PUT" and "partNumber" in self.query

    @property
    def is_put_object(self) -> bool:
        return self.method == "PUT" and "partNumber" not in self.query \
            and "uploadId" not in self.query

    @property
    def is_complete_multipart(self) -> bool:
        return self.method == "POST" and "uploadId" in self.query

    @property
    def creates_an_object(self) -> bool:
        """PutObject or CompleteMultipartUpload: the two requests that make an object."""
        return self.is_put_object or self.is_complete_multipart


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    message: str = "injected by the test bed"


# A rule sees each request (and how many matching ones came before) and returns a fault,
# a delay in seconds, or None to forward it untouched.
Rule = Callable[[Request], Fault | float | None]


@dataclass
class FaultyS3:
    url: str
    seen: list[Request] = field(default_factory=list)


def _error_body(fault: Fault) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
            f"<Message>{fault.message}</Message><RequestId>testbed</RequestId></Error>"
            ).encode()


def _handler(upstream: str, rule: Rule, proxy: FaultyS3,
             dropped_headers: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _handle(self) -> None:
            body = self._body()
            split = urllib.parse.urlsplit(self.path)
            request = Request(self.command, split.path, urllib.parse.parse_qs(
                split.query, keep_blank_values=True),
                {key.lower(): value for key, value in self.headers.items()})
            proxy.seen.append(request)
            decision = rule(request)
            if isinstance(decision, float | int) and not isinstance(decision, bool):
                time.sleep(float(decision))
            elif isinstance(decision, Fault):
                payload = b"" if self.command == "HEAD" else _error_body(decision)
                self.send_response(decision.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            headers = {key: value for key, value in self.headers.items()
                       if key.lower() not in ("transfer-encoding", "connection", *dropped_headers)}
            headers["Content-Length"] = str(len(body))
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port,
                                                    timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection",
                                           "content-length"):
                        self.send_header(key, value)
                # A HEAD answer carries the object's length but no body.
                length = response.getheader("Content-Length", "0") \
                    if self.command == "HEAD" else str(len(payload))
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


@contextmanager
def faulty_s3(upstream: str, rule: Rule, *, dropped_headers: frozenset[str] = frozenset(),
              port: int = 0, hang_up: bool = False) -> Iterator[FaultyS3]:
    """Serve a fault-injecting proxy to `upstream` on 127.0.0.1 (`port`, or a free one); it
    forwards requests without `dropped_headers` (lower case), e.g. a bucket that ignores
    If-None-Match (moto does not check request signatures). Leaving the block closes the
    port; with `hang_up` it also ends the connections clients keep alive, so every request
    fails until a proxy serves the port again: S3 down, then back."""
    proxy = FaultyS3(url="")
    connections: list[socket.socket] = []

    class Server(ThreadingHTTPServer):
        def process_request(self, request: Any, client_address: Any) -> None:
            connections.append(request)
            super().process_request(request, client_address)

    server = Server(("127.0.0.1", port), _handler(upstream, rule, proxy, dropped_headers))
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        for connection in connections if hang_up else []:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()


def fail_first(count: int, fault: Fault, matches: Callable[[Request], bool]) -> Rule:
    """Fail the first `count` matching requests with `fault`, then let them through."""
    failed = 0
    lock = threading.Lock()

    def rule(request: Request) -> Fault | None:
        nonlocal failed
        with lock:
            if matches(request) and failed < count:
                failed += 1
                return fault
        return None

    return rule


def fail_after(count: int, fault: Fault, matches: Callable[[Request], bool]) -> Rule:
    """Let `count` matching requests through, then fail every later one."""
    passed = 0
    lock = threading.Lock()

    def rule(request: Request) -> Fault | None:
        nonlocal passed
        with lock:
            if not matches(request):
                return None
            if passed < count:
                passed += 1
                return None
        return fault

    return rule

"""A local S3 endpoint: moto's server on 127.0.0.1, reached like AWS via AWS_ENDPOINT_URL_S3."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from moto.server import ThreadedMotoServer

from testbed.postgres import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "ap-northeast-2"
# moto accepts any key until IAM enforcement is switched on; these are obviously fake.
ADMIN_ACCESS_KEY_ID = "AKIATESTBEDADMIN0000"
ADMIN_SECRET_ACCESS_KEY = "testbed-admin-secret-not-real"


@dataclass(frozen=True)
class S3Endpoint:
    url: str

    def environment(self, *, access_key_id: str = ADMIN_ACCESS_KEY_ID,
                    secret_access_key: str = ADMIN_SECRET_ACCESS_KEY) -> dict[str, str]:
        """Return the standard AWS variables that point a process at this endpoint."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ACCESS_KEY_ID": access_key_id,
            "AWS_SECRET_ACCESS_KEY": secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # Never read the developer's own AWS files.
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def client(self, *, access_key_id: str = ADMIN_ACCESS_KEY_ID,
               secret_access_key: str = ADMIN_SECRET_ACCESS_KEY) -> S3Client:
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=access_key_id,
                            aws_secret_access_key=secret_access_key)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]

    def enforce_iam(self) -> None:
        """Switch on moto's IAM policy enforcement for this server (POST reset-auth, body 0)."""
        request = urllib.request.Request(  # noqa: S310 - our own loopback http URL
            f"{self.url}/moto-api/reset-auth", data=b"0", method="POST",
            headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own loopback URL
            pass


@contextmanager
def running_s3_process() -> Iterator[S3Endpoint]:
    """Start moto's server in its own process, for tests that switch on IAM enforcement.

    moto keeps that switch in a module global, so an enforcing server must not share a
    process with the session's ordinary one.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = S3Endpoint(url=f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def running_s3() -> Iterator[S3Endpoint]:
    """Start moto's server on a free 127.0.0.1 port; stop it afterwards."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Endpoint(url=f"http://{host}:{port}")
    finally:
        server.stop()

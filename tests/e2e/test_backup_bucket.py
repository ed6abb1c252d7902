"""`backup-agent backup` and the bucket's defences: create-only writes and Object Lock.

The real CLI runs against moto's server, through the test bed's proxy where the requests
themselves are the point.
"""

from __future__ import annotations

from pathlib import Path

from testbed.faulty_s3 import faulty_s3
from testbed.s3 import S3Endpoint
from tests.conftest import make_backup, run_agent


def signing(agent_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "signing.pem"
    assert run_agent(["keygen", "--signing", str(key)], agent_env).returncode == 0
    return {**agent_env, "SIGNING_KEY_FILE": str(key)}


def test_every_object_a_backup_writes_is_created_never_written_over(
        agent_env: dict[str, str], s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    with faulty_s3(s3_endpoint.url, lambda request: None) as proxy:
        report = make_backup({**signing(agent_env, tmp_path),
                              "AWS_ENDPOINT_URL_S3": proxy.url})
    key = report["s3"]["key"]
    created = {request.path.split("/", 2)[2]: request for request in proxy.seen
               if request.creates_an_object}
    assert sorted(created) == sorted(f"{key}{suffix}" for suffix in
                                     ("", ".sha256", ".globals", ".sig", ".manifest.json"))
    assert {request.headers.get("if-none-match") for request in created.values()} == {"*"}
    bodies = [request for request in proxy.seen if request.method == "PUT"]
    assert bodies and all(request.headers.get("content-md5") for request in bodies)


def test_a_backup_into_a_bucket_with_object_lock_default_retention_succeeds(
        agent_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str) -> None:
    client = s3_endpoint.client()
    # As the Pulumi program does it: versioning first, then Object Lock on the same bucket.
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
    report = make_backup(agent_env)
    assert report["status"] == "success"
    for suffix in ("", ".sha256", ".manifest.json"):
        head = client.head_object(Bucket=bucket, Key=report["s3"]["key"] + suffix)
        assert head["ObjectLockMode"] == "GOVERNANCE", suffix
    verified = run_agent(["verify", report["s3"]["uri"]], agent_env)
    assert verified.returncode == 0, verified.stderr

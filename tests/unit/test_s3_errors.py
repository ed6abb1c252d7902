"""boto3 failures become one line with a fix, and exit code 5."""

from __future__ import annotations

import botocore.exceptions
import pytest
from boto3.exceptions import S3UploadFailedError

from backup_agent.model.errors import ExitCode
from backup_agent.storage.s3_errors import translate_error


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"},
         "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        "PutObject")


@pytest.mark.parametrize(("error", "fragment"), [
    (client_error("NoSuchBucket", 404), "bucket b does not exist"),
    (client_error("AccessDenied", 403), "access denied"),
    (client_error("InvalidAccessKeyId", 403), "AWS_ACCESS_KEY_ID"),
    (client_error("SignatureDoesNotMatch", 403), "AWS_SECRET_ACCESS_KEY"),
    (client_error("RequestTimeTooSkewed", 403), "clock"),
    (client_error("SlowDown", 503), "SlowDown"),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), "cannot reach"),
    (botocore.exceptions.NoCredentialsError(), "no AWS credentials"),
])
def test_s3_errors_are_translated(error: Exception, fragment: str) -> None:
    translated = translate_error(error, bucket="b", action="upload the backup")
    assert fragment in str(translated)
    assert translated.exit_code == ExitCode.S3


def test_upload_failures_are_unwrapped() -> None:
    try:
        try:
            raise client_error("AccessDenied", 403)
        except botocore.exceptions.ClientError as inner:
            raise S3UploadFailedError("Failed to upload") from inner
    except S3UploadFailedError as wrapped:
        assert "access denied" in str(translate_error(wrapped, bucket="b", action="upload"))


def test_unknown_errors_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        translate_error(ZeroDivisionError(), bucket="b", action="upload")

"""Turn boto3's exceptions into one-line S3Errors that name the fix.

Only the S3 store calls this: every other module sees S3Error or a result.
"""

from __future__ import annotations

import botocore.exceptions
from boto3.exceptions import S3UploadFailedError

from backup_agent.model.errors import ObjectExistsError, S3Error

NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
# A create-only write (If-None-Match: *) found an object at its key (412), or raced another
# write to the same key (409).
EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def error_code(error: Exception) -> str:
    """Return the S3 error code of a ClientError ("" for anything else)."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def translate_error(error: Exception, *, bucket: str, action: str,
                    endpoint: str | None = None) -> S3Error:
    """Return the one-line S3Error that explains a boto3 failure."""
    if isinstance(error, S3UploadFailedError) and isinstance(error.__context__, Exception):
        error = error.__context__
    where = endpoint or "S3"
    if isinstance(error, botocore.exceptions.PartialCredentialsError):
        return S3Error("the AWS credentials are incomplete (an access key id without its "
                       "secret, or the reverse): set both AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY (env or --env-file)")
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return S3Error("no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY (env or --env-file)")
    if isinstance(error, (botocore.exceptions.EndpointConnectionError,
                          botocore.exceptions.ConnectTimeoutError,
                          botocore.exceptions.ConnectionClosedError,
                          botocore.exceptions.ReadTimeoutError)):
        return S3Error(f"cannot reach {where} to {action}: check the network and "
                       "AWS_ENDPOINT_URL_S3/AWS_REGION")
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return S3Error(f"bucket {bucket} does not exist: check S3_BUCKET "
                           "(or create it with `pulumi up`)")
        if code == "InvalidAccessKeyId":
            return S3Error("AWS does not know this access key id: check AWS_ACCESS_KEY_ID "
                           "(PROD_AWS_ACCESS_KEY_ID in GitHub)")
        if code == "SignatureDoesNotMatch":
            return S3Error("AWS rejected the request signature: check AWS_SECRET_ACCESS_KEY "
                           "(PROD_AWS_SECRET_ACCESS_KEY in GitHub)")
        if code in ("RequestTimeTooSkewed", "RequestExpired"):
            return S3Error("this machine's clock is too far from AWS's: fix the time "
                           "(timedatectl set-ntp true) and run again")
        if code in EXISTS_CODES:
            return ObjectExistsError(
                f"refusing to {action} in s3://{bucket}: an object already exists at that key, "
                "and this agent only ever creates objects (If-None-Match), never replaces one")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled") or status == 403:
            return S3Error(f"access denied to {action} in s3://{bucket} (403): check the "
                           "access key and that its IAM policy allows it")
        message = error.response.get("Error", {}).get("Message", "")
        return S3Error(f"S3 refused to {action} in s3://{bucket}: {code} {message}".strip())
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return S3Error(f"S3 failed to {action} in s3://{bucket}: {error}")
    raise error

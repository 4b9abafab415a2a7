"""What the command line says when a command fails: one line, and what to do, never a
traceback.

`explain(exc)` gives the exit status and that line for anything a command raises:

    2  refused before any request: the launcher's own checks (LauncherError), botocore's
       parameter check, the SDK's role check, and what this machine lacks to send one
       (credentials, a region, a profile)
    1  AWS or the job failed: an AWS error answer (each common one with its own advice:
       throttling, access denied, credentials AWS refused, a validation error, a quota,
       a name in use), AWS out of reach, a job or endpoint that failed, a wait that timed
       out, an answer of AWS's the SageMaker SDK could not read, anything unexpected

Set LAUNCHER_DEBUG=1 to get the traceback as well (for a bug report).
"""

from __future__ import annotations

import os
import sys

from ..settings import LauncherError
from ..waiting import JobFailed, WaitTimeout

DEBUG_ENV = "LAUNCHER_DEBUG"

_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "NotAuthorized",
    "Forbidden",
}
_BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
}
_CREDENTIALS_HELP = (
    "run `aws configure` or `aws sso login`, or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY"
)


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def explain(exc: BaseException) -> tuple[int, str]:
    """(exit status, message) for `exc`, whatever raised it."""
    if isinstance(exc, LauncherError):
        return 2, str(exc)
    if isinstance(exc, (JobFailed, WaitTimeout)):
        return 1, str(exc)
    if _is_role_error(exc):
        return 2, one_line(exc)
    found = _botocore(exc)
    if found is None:
        found = _sdk(exc)
    if found is None:
        where = f"{type(exc).__module__}.{type(exc).__name__}"
        found = (
            1,
            f"unexpected {where}: {one_line(exc) or 'no message'} (run again with "
            f"{DEBUG_ENV}=1 for the traceback, and please report it)",
        )
    return found


def _botocore(exc: BaseException) -> tuple[int, str] | None:
    try:
        from botocore import exceptions as bc
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, bc.ClientError):
        return _client_error(exc)
    if isinstance(exc, bc.ParamValidationError):  # botocore's own check, before sending
        return 2, one_line(exc)
    if isinstance(
        exc,
        (
            bc.NoCredentialsError,
            bc.PartialCredentialsError,
            bc.CredentialRetrievalError,
            bc.NoAuthTokenError,
            bc.TokenRetrievalError,
            bc.SSOTokenLoadError,
            bc.UnauthorizedSSOTokenError,
        ),
    ):
        return 2, f"no usable AWS credentials ({one_line(exc)}): {_CREDENTIALS_HELP}"
    if isinstance(exc, bc.NoRegionError):
        return 2, "no AWS region: pass --region or set AWS_REGION or AWS_DEFAULT_REGION"
    if isinstance(exc, bc.ProfileNotFound):
        return 2, f"{one_line(exc)}: check AWS_PROFILE against your ~/.aws/config"
    if isinstance(
        exc,
        (
            bc.EndpointConnectionError,
            bc.ConnectTimeoutError,
            bc.ReadTimeoutError,
            bc.ProxyConnectionError,
            bc.SSLError,
            bc.ConnectionClosedError,
        ),
    ):
        return 1, (
            f"could not reach AWS ({one_line(exc)}): check the network, a proxy "
            "(HTTPS_PROXY, NO_PROXY) and AWS_ENDPOINT_URL, then run again"
        )
    if isinstance(exc, bc.BotoCoreError):
        return 1, f"the AWS client failed: {one_line(exc)}"
    return None


def _client_error(exc) -> tuple[int, str]:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "") or "Unknown")
    message = one_line(error.get("Message", "") or exc)
    operation = exc.operation_name
    said = f"AWS refused {operation} ({code}): {message}"
    if code in _THROTTLED:
        return 1, (
            f"{said}: throttled, still after the client's retries; wait a minute and run "
            "again, or allow more retries (AWS_MAX_ATTEMPTS=10, AWS_RETRY_MODE=adaptive)"
        )
    if code in _DENIED:
        return 1, (
            f"{said}: your AWS identity may not call {operation}; ask for that permission "
            "(creating a job, model or endpoint also needs iam:PassRole on the execution role)"
        )
    if code in _BAD_CREDENTIALS:
        return 1, f"{said}: AWS did not accept the credentials; {_CREDENTIALS_HELP}"
    if code == "ResourceLimitExceeded":
        return 1, f"{said}: an account quota; ask for more in Service Quotas, or free some"
    if code == "ResourceInUse":
        return 1, f"{said}: pick another --name, or delete the one there"
    if code in ("ValidationException", "ValidationError"):
        lowered = message.lower()
        if "could not find" in lowered or "does not exist" in lowered:
            return 1, f"{said}: check the name, and the region (--region, AWS_REGION)"
        return 1, f"{said} (SageMaker's own check, after the launcher's)"
    return 1, said


def _sdk(exc: BaseException) -> tuple[int, str] | None:
    """The SageMaker SDK's own exceptions, and pydantic's when the SDK cannot read an
    answer of AWS's (a field it does not expect: plain moto's `VpcConfig: {}`, say)."""
    module = type(exc).__module__ or ""
    if module.startswith("pydantic"):
        errors = getattr(exc, "errors", lambda: [])()
        first = errors[0] if errors else {}
        field = ".".join(str(part) for part in first.get("loc", ())) or "?"
        return 1, (
            f"the SageMaker SDK could not read AWS's answer: {field}: "
            f"{one_line(first.get('msg', exc))} (against moto: scripts/launch_demo.py patches "
            "moto for this; against AWS: upgrade the sagemaker package)"
        )
    if module.startswith("sagemaker"):
        return 1, f"the SageMaker SDK failed: {one_line(exc)}"
    return None


def _is_role_error(exc: BaseException) -> bool:
    """The SDK's RoleValidationError: the role cannot be used, checked before the job."""
    resolver = sys.modules.get("sagemaker.core.helper.iam_role_resolver")
    error = getattr(resolver, "RoleValidationError", None)
    return error is not None and isinstance(exc, error)


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")

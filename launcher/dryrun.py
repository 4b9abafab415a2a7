"""Dry runs: every check a launch makes, then the requests it would send, none sent.

`dry_run(launcher.train, train=..., ...)` runs the launch function itself, unchanged,
on a `recording_session`: a boto3 session whose clients stop every call at botocore's
`before-call` event, after botocore has built and validated the request and just before
it would be signed and sent. Each call's parameters are recorded there, so what a dry
run prints is what the real launch sends, built by the same code (the SDK v3's
ModelTrainer and resources included), not a second description of it. The session holds
fake credentials, so nothing looks credentials up either.

A call still needs an answer for the code after it to go on. Writes (CreateTrainingJob,
PutScalingPolicy, InvokeEndpoint, ...) are answered with placeholder ARNs; reads
(DescribeTrainingJob of the job a deploy takes its model.tar.gz from, say) cannot be
known without AWS and are answered with placeholders in angle brackets
(`<model.tar.gz of training job NAME>`), which is what the printed requests then hold.
A resource is InService or Completed at once, so a dry deploy goes on to autoscaling.
Nothing waits. The SDK's telemetry and its IAM role check (both AWS requests of their
own) are switched off for the run.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .settings import LauncherError, default_region

# Clients need a real region to be built; without one a dry run builds its requests for
# this one and prints the region as REGION_PLACEHOLDER.
STAND_IN_REGION = "us-east-1"
REGION_PLACEHOLDER = "<region>"
ACCOUNT = "<account>"
# Operations that only read: listed apart in the output, answered with placeholders.
_READS = ("Describe", "Get", "List", "Head")


@dataclass(frozen=True)
class Request:
    service: str  # as boto3 names it: sagemaker, sagemaker-runtime, s3, ...
    operation: str  # the API's name: CreateTrainingJob
    params: dict[str, Any]

    @property
    def is_read(self) -> bool:
        return self.operation.startswith(_READS)

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "params": self.params}


@dataclass
class DryRun:
    """What a dry run would have sent: `requests` (writes), `reads`, in call order."""

    region: str  # REGION_PLACEHOLDER when none was given
    calls: list[Request] = field(default_factory=list)

    @property
    def requests(self) -> list[Request]:
        return [c for c in self.calls if not c.is_read]

    @property
    def reads(self) -> list[Request]:
        return [c for c in self.calls if c.is_read]

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests]

    def as_json(self) -> str:
        return json.dumps(
            {
                "dry_run": True,
                "region": self.region,
                "requests": [r.as_dict() for r in self.requests],
                "reads": [r.as_dict() for r in self.reads],
                "note": "nothing was sent: reads were answered with <placeholders>, which "
                "the requests after them hold where a real run has what AWS answers",
            },
            indent=2,
            default=_jsonable,
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def recording_session(region: str | None) -> Any:
    """A boto3 session that records each client call and answers it without sending.

    `dry_run` marks it for `settings.is_dry_run`; `region_given` says whether its region
    is the caller's or the stand-in; `recorded` is the DryRun it fills.
    """
    import boto3

    class RecordingSession(boto3.Session):
        dry_run = True

    session = RecordingSession(
        region_name=region or STAND_IN_REGION,
        aws_access_key_id="dry-run",
        aws_secret_access_key="dry-run",  # no real credentials are needed
    )
    session.region_given = region is not None
    session.recorded = DryRun(region or REGION_PLACEHOLDER)
    session.events.register("before-parameter-build", _keep_params)
    # S3 rewrites CopySource into a URL-quoted string at this same event: kept as the
    # launcher built it, {"Bucket", "Key"} (or a read's <placeholder>), it reads as meant.
    session.events.register_first("before-parameter-build.s3.CopyObject", _keep_params)
    session.events.register("before-call", _answer_for(session))
    session.events.register("before-send", _never_send)
    return session


def without_telemetry(sagemaker_session: Any) -> Any:
    """The SDK session, opted out of the SDK's telemetry (an HTTPS request of its own
    after every ModelTrainer.train) through its SDK defaults config."""
    config = copy.deepcopy(sagemaker_session.sagemaker_config or {})
    config.setdefault("SchemaVersion", "1.0")
    sdk = config.setdefault("SageMaker", {}).setdefault("PythonSDK", {})
    sdk.setdefault("Modules", {})["TelemetryOptOut"] = True
    sagemaker_session.sagemaker_config = config
    return sagemaker_session


def _keep_params(params: dict, model: Any, context: dict, **_: Any) -> None:
    """The call's parameters as the caller built them; recorded once botocore has
    validated them (before-call), so a call it refuses is not listed."""
    context.setdefault("dry_run_params", copy.deepcopy(params))


def _answer_for(session: Any) -> Callable[..., Any]:
    def answer(model: Any, context: dict, **_: Any):
        from botocore.awsrequest import AWSResponse

        service = model.service_model.service_name
        request = Request(service, model.name, context.get("dry_run_params", {}))
        session.recorded.calls.append(request)
        parsed = _stand_in(request, session.region_name)
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": 200, "RetryAttempts": 0})
        return AWSResponse("https://dry-run.invalid/", 200, {}, None), parsed

    return answer


def _never_send(request: Any, **_: Any) -> None:
    # `before-call` answered every call; reaching the wire would be a bug, so refuse it.
    raise LauncherError(f"dry run: a request to {request.url} was about to be sent")


def _stand_in(request: Request, region: str) -> dict[str, Any]:
    """The answer a call gets in a dry run: placeholders where AWS would know."""
    p, op = request.params, request.operation

    def arn(kind: str, name: str) -> str:
        return f"arn:aws:{request.service}:{region}:{ACCOUNT}:{kind}/{name}"

    if op == "CreateTrainingJob":
        return {"TrainingJobArn": arn("training-job", p["TrainingJobName"])}
    if op == "DescribeTrainingJob":
        name = p["TrainingJobName"]
        return {
            "TrainingJobName": name,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"<model.tar.gz of training job {name}>"},
        }
    if op == "CreateHyperParameterTuningJob":
        name = p["HyperParameterTuningJobName"]
        return {"HyperParameterTuningJobArn": arn("hyper-parameter-tuning-job", name)}
    if op == "DescribeHyperParameterTuningJob":
        name = p["HyperParameterTuningJobName"]
        return {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobStatus": "Completed",
            "HyperParameterTuningJobConfig": {},
            "BestTrainingJob": {
                "TrainingJobName": f"<best trial of tuning job {name}>",
                "TrainingJobStatus": "Completed",
            },
        }
    if op in (
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "CreateTransformJob",
        "CreateInferenceComponent",
    ):
        kind = op[len("Create") :]
        name = p[f"{kind}Name"]
        return {f"{kind}Arn": arn(_arn_kind(kind), name)}
    if op in ("DescribeModel", "DescribeTransformJob"):
        kind = op[len("Describe") :]
        return {f"{kind}Name": p[f"{kind}Name"]}
    if op == "DescribeEndpointConfig":
        name = p["EndpointConfigName"]
        return {
            "EndpointConfigName": name,
            "ProductionVariants": [
                {
                    "VariantName": f"<variant of endpoint config {name}>",
                    "ModelName": f"<model of endpoint config {name}>",
                }
            ],
        }
    if op == "DescribeEndpoint":
        name = p["EndpointName"]
        return {
            "EndpointName": name,
            "EndpointStatus": "InService",
            "EndpointConfigName": f"<endpoint config of endpoint {name}>",
        }
    if op == "DescribeInferenceComponent":
        name = p["InferenceComponentName"]
        return {
            "InferenceComponentName": name,
            "EndpointName": f"<endpoint of inference component {name}>",
            "InferenceComponentStatus": "InService",
            "Specification": {"ModelName": f"<model of inference component {name}>"},
        }
    if op == "ListInferenceComponents":
        return {"InferenceComponents": []}
    if op == "DescribeScalableTargets":
        return {"ScalableTargets": []}
    if op == "DescribeScalingPolicies":
        return {"ScalingPolicies": []}
    if op == "HeadObject":
        return {"ContentLength": 0}
    if op == "CopyObject":
        return {"CopyObjectResult": {}}
    if op == "PutScalingPolicy":
        return {"PolicyARN": f"<policy arn of {p['PolicyName']}>", "Alarms": []}
    if op in (
        "RegisterScalableTarget",
        "PutMetricAlarm",
        "PutObject",
        "DeleteEndpoint",
        "DeleteEndpointConfig",
        "DeleteModel",
        "DeleteInferenceComponent",
        "DeleteScalingPolicy",
        "DeregisterScalableTarget",
    ):
        return {}
    if op == "InvokeEndpoint":
        from botocore.response import StreamingBody

        return {"Body": StreamingBody(io.BytesIO(b""), 0), "ContentType": "<answer type>"}
    if op == "InvokeEndpointAsync":
        return {"OutputLocation": "<output location>", "InferenceId": "<inference id>"}
    raise LauncherError(f"dry run: {request.service} {op} has no stand-in answer")


def _arn_kind(kind: str) -> str:
    """EndpointConfig -> endpoint-config, as SageMaker spells resource types in ARNs."""
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in kind).lstrip("-")


# The SDK reads the role check's switch from the environment on every call; the dry run
# sets it for its own duration only, one dry run at a time.
_ENV_LOCK = threading.Lock()
_ROLE_CHECK_ENV = "SAGEMAKER_VALIDATE_ROLE"


@contextlib.contextmanager
def _sdk_offline() -> Iterator[None]:
    """No IAM role check (iam:SimulatePrincipalPolicy, GetRole) for the run."""
    with _ENV_LOCK:
        before = os.environ.get(_ROLE_CHECK_ENV)
        os.environ[_ROLE_CHECK_ENV] = "false"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(_ROLE_CHECK_ENV, None)
            else:
                os.environ[_ROLE_CHECK_ENV] = before


def dry_run(launch: Callable[..., Any], /, *args: Any, **kwargs: Any) -> DryRun:
    """Run `launch` (launcher.train, tune, deploy, deploy_component, transform, invoke,
    invoke_async, add_model, delete, delete_component) with every check, recording its
    requests instead of sending them; returns them.

    Needs no credentials. Without a region (argument, environment or AWS config file) the
    requests are built for us-east-1 and the region prints as `<region>`; without a role
    or image, placeholders stand in. What the launch prints (its progress lines) is
    dropped: none of it happened.
    """
    if kwargs.get("boto_session") is not None:
        raise LauncherError("a dry run brings its own session: leave boto_session out")
    region = kwargs.pop("region", None) or default_region()
    session = recording_session(region)
    with _sdk_offline(), contextlib.redirect_stdout(io.StringIO()):
        launch(*args, boto_session=session, **kwargs)
    return session.recorded

"""Where a launch goes: region, IAM role and image URI, resolved and checked up front.

Every command needs a region; the commands that create a training job or a model also
need the execution role SageMaker assumes and the image URI it runs. Each comes from an
argument (CLI flag) or the environment, and anything missing or malformed raises
`LauncherError` naming all the problems at once, before boto3 or the SageMaker SDK
sends a single request.

    region     --region      AWS_REGION, AWS_DEFAULT_REGION, then the AWS config file
    role       --role        SAGEMAKER_ROLE_ARN
    image URI  --image-uri   IMAGE_URI

In a dry run (`dryrun.py`: the boto3 session records instead of sending) none of them is
needed: what is given is checked as ever, what is missing becomes a placeholder that no
one could mistake for a real value (`ROLE_PLACEHOLDER`, `IMAGE_PLACEHOLDER`).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
ROLE_ENV = "SAGEMAKER_ROLE_ARN"
IMAGE_ENV = "IMAGE_URI"

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
)
_IMAGE = re.compile(
    r"^[^\s/:]+(:\d+)?/[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})?$"
)
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?P<key>/.*)?$")
# What a dry run puts where a role or image was not given. The role keeps the shape of an
# ARN, so the SDK takes it as one instead of looking a role of that name up in IAM.
ROLE_PLACEHOLDER = "arn:aws:iam::<account>:role/<role: --role or SAGEMAKER_ROLE_ARN>"
IMAGE_PLACEHOLDER = "<image-uri: --image-uri or IMAGE_URI>"
MAX_IMAGE_URI = 255  # ContainerImage, AlgorithmImage
# SageMaker's pattern for job, model, endpoint and endpoint config names.
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class LauncherError(ValueError):
    """A launch that cannot work as asked; the message says what to change."""


def is_dry_run(boto_session: Any) -> bool:
    """Whether `boto_session` is a dry run's recording session (`dryrun.recording_session`):
    its requests are recorded and answered with placeholders, never sent."""
    return getattr(boto_session, "dry_run", False) is True


@dataclass(frozen=True)
class Target:
    """A resolved region, plus the role and image where the command needs them."""

    region: str
    role: str | None = None
    image_uri: str | None = None

    def boto_session(self):
        import boto3

        return boto3.Session(region_name=self.region)


def resolve(
    region: str | None = None,
    role: str | None = None,
    image_uri: str | None = None,
    *,
    need_role: bool = False,
    need_image: bool = False,
    boto_session: Any = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """The Target from arguments, then the environment; raises LauncherError if incomplete.

    `boto_session`, when given, supplies the region if no argument does. Nothing here
    sends a request: the AWS config file is read, never the network.
    """
    env = os.environ if env is None else env
    problems = []
    dry = is_dry_run(boto_session)

    session_region = boto_session.region_name if boto_session is not None else None
    if region and session_region and region != session_region:
        problems.append(f"region {region} differs from the boto3 session's {session_region}")
    region = region or session_region or default_region(env)
    if not region:
        problems.append(
            "no AWS region: pass --region (region= in Python) or set AWS_REGION "
            "or AWS_DEFAULT_REGION"
        )
    elif not _REGION.match(region):
        problems.append(f"region {region!r} does not look like an AWS region (e.g. us-east-1)")

    role = role or env.get(ROLE_ENV) or None
    if need_role:
        if not role and dry:
            role = ROLE_PLACEHOLDER
        elif not role:
            problems.append(
                "no IAM role for SageMaker to assume: pass --role (role= in Python) or set "
                f"{ROLE_ENV} to an ARN like arn:aws:iam::123456789012:role/SageMakerExecution"
            )
        elif not _ROLE_ARN.match(role):
            problems.append(
                f"role {role!r} is not an IAM role ARN "
                "(arn:aws:iam::<12-digit account>:role/<name>)"
            )

    image_uri = image_uri or env.get(IMAGE_ENV) or None
    if need_image:
        if not image_uri and dry:
            image_uri = IMAGE_PLACEHOLDER
        elif not image_uri:
            problems.append(
                "no image URI: pass --image-uri (image_uri= in Python) or set "
                f"{IMAGE_ENV} to what build_and_push.sh printed, e.g. "
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
            )
        else:
            # A dry run without a region builds its requests for a stand-in one: the
            # image's region cannot be compared with it.
            known = not dry or boto_session.region_given
            problems.extend(_image_problems(image_uri, region if known else None))

    if problems:
        raise LauncherError("; ".join(problems))
    return Target(region=region, role=role, image_uri=image_uri)


def default_region(env: Mapping[str, str] | None = None) -> str | None:
    """The region from the environment, then the AWS config file; None when neither
    names one. Read locally: no request."""
    env = os.environ if env is None else env
    return next((env[k] for k in REGION_ENVS if env.get(k)), None) or _region_from_config_file()


def _region_from_config_file() -> str | None:
    """The region of the active profile in ~/.aws/config, read locally (no request)."""
    try:
        import botocore.session

        return botocore.session.Session().get_config_variable("region")
    except Exception:  # a broken config file is reported by boto3 later, with its own words
        return None


def _image_problems(image_uri: str, region: str | None) -> list[str]:
    if len(image_uri) > MAX_IMAGE_URI:
        return [
            f"image URI of {len(image_uri)} characters: SageMaker takes at most {MAX_IMAGE_URI}"
        ]
    if "://" in image_uri or not _IMAGE.match(image_uri):
        return [
            f"image URI {image_uri!r} is not a registry/repository[:tag] reference "
            "(e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest)"
        ]
    ecr = _ECR_IMAGE.match(image_uri)
    if ecr and region and ecr["region"] != region:
        # SageMaker pulls the image from ECR in the job's own region only.
        return [
            f"image {image_uri!r} is in ECR region {ecr['region']} but the launch targets "
            f"{region}: push the image to {region} (build_and_push.sh) or pass --region "
            f"{ecr['region']}"
        ]
    return []


# --- small checks shared by the commands -----------------------------------------------
# SageMaker's S3Uri (channels, output, checkpoints, transform, model data) takes 1024
# characters; DestinationS3Uri (data capture, async output and failure paths) 512.
MAX_S3_URI = 1024
MAX_DESTINATION_S3_URI = 512


def check_s3_uri(
    uri: str | None, what: str, *, required: bool = True, max_length: int = MAX_S3_URI
) -> str | None:
    """`uri` if it is an s3://bucket/... URI of at most `max_length` characters, else
    LauncherError naming `what`."""
    if uri is None or uri == "":
        if required:
            raise LauncherError(f"{what}: an s3://bucket/prefix URI is required")
        return None
    if not _S3_URI.match(uri):
        raise LauncherError(f"{what}: {uri!r} is not an s3://bucket/prefix URI")
    if len(uri) > max_length:
        raise LauncherError(
            f"{what}: {len(uri)} characters, SageMaker takes at most {max_length} ({uri[:40]}...)"
        )
    return uri


def check_s3_prefix(uri: str | None, what: str) -> str:
    """`uri` if it is an s3://bucket/prefix/ URI ending in `/` (a folder of objects)."""
    check_s3_uri(uri, what)
    if not uri.endswith("/"):
        raise LauncherError(
            f"{what}: {uri!r} is not a prefix: end it with / (s3://bucket/models/), as "
            "SageMaker appends each model's key to it"
        )
    return uri


def s3_bucket(uri: str) -> str:
    return _S3_URI.match(uri)["bucket"]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'key/with/slashes') from s3://bucket/key/with/slashes."""
    match = _S3_URI.match(uri)
    if not match:
        raise LauncherError(f"{uri!r} is not an s3://bucket/key URI")
    return match["bucket"], (match["key"] or "/")[1:]


def check_name(name: str, what: str, max_length: int = 63) -> str:
    """A SageMaker resource name: letters, digits and hyphens, up to `max_length`."""
    if not _NAME.match(name) or len(name) > max_length:
        raise LauncherError(
            f"{what} {name!r} is not a valid SageMaker name: letters, digits and hyphens, "
            f"starting and ending with a letter or digit, at most {max_length} characters"
        )
    return name


# The botocore shapes that list SageMaker's instance types, by what they run.
_INSTANCE_TYPE_SHAPES = {
    "training": "TrainingInstanceType",
    "endpoint": "ProductionVariantInstanceType",
    "transform": "TransformInstanceType",
}


def check_instance_type(instance_type: str, kind: str) -> str:
    """`instance_type` if SageMaker offers it for `kind` (training, endpoint, transform),
    as the installed botocore's service model lists them; LauncherError else."""
    known = _instance_types(kind)
    if instance_type in known:
        return instance_type
    import difflib

    close = difflib.get_close_matches(str(instance_type), known, n=3, cutoff=0.75)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise LauncherError(
        f"instance type {instance_type!r} is not a SageMaker {kind} instance type{hint} "
        f"(botocore lists {len(known)}; if yours is newer than it, upgrade boto3)"
    )


# Instance families with GPUs or other accelerators, as SageMaker names them:
# ml.g4dn/g5/g6 and ml.p3/p4d/p5 (NVIDIA GPUs), ml.inf1/inf2 (Inferentia), ml.trn1/trn2
# (Trainium), ml.dl1 (Gaudi). Every other family (m, c, r, t, and the Graviton ones such as
# m6g, whose `g` comes after the generation) is CPU only.
ACCELERATED_FAMILIES = ("g", "p", "inf", "trn", "dl")


def is_accelerated(instance_type: str) -> bool:
    """Whether `instance_type` (ml.FAMILY.SIZE) has GPUs or other accelerators."""
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    return family.startswith(ACCELERATED_FAMILIES)


@functools.cache
def _instance_types(kind: str) -> tuple[str, ...]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for(_INSTANCE_TYPE_SHAPES[kind]).enum)


def timestamped(base: str) -> str:
    """`base-YYYYmmdd-HHMMSS` (UTC): a fresh name per launch."""
    from datetime import datetime, timezone

    return f"{base}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"


def takes_plan_arguments(plan: Callable) -> Callable[[Callable], Callable]:
    """Show a launch function's `**launch` as the keyword arguments of its `plan_*`.

    `train(**launch)` forwards to `plan_training(**launch)`; this gives `train` the
    combined signature, so help() and editors list every argument once.
    """

    def decorate(fn: Callable) -> Callable:
        own = inspect.signature(fn)
        params = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in params}
        params += [p for p in inspect.signature(plan).parameters.values() if p.name not in names]
        fn.__signature__ = own.replace(parameters=params)
        return fn

    return decorate

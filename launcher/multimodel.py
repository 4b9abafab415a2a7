"""Multi-model endpoints: the S3 prefix, target models, and adding a model to the prefix.

A multi-model endpoint (MME) is one SageMaker Model with `Mode: MultiModel` whose
ModelDataUrl is an S3 prefix; it serves every model.tar.gz under that prefix.
`InvokeEndpoint` names one with `TargetModel`, its key relative to the prefix
(`customer-42.tar.gz`): SageMaker copies that object to the instance on first use,
extracts it, and asks the container to load it (`POST /models`). Adding a model is adding
an object under the prefix (`add_model`); nothing about the endpoint changes. An object
replaced under the same key is not reloaded where it is already loaded, so a new version
is best added under a new name.

SageMaker runs custom containers (this image) as MMEs on CPU instances only: GPU MMEs are
for its Triton container. So an MME deploys the CPU image, and a GPU instance type is
refused here, before any request.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from .settings import (
    LauncherError,
    Target,
    check_s3_prefix,
    check_s3_uri,
    is_accelerated,
    is_dry_run,
    resolve,
    split_s3_uri,
    takes_plan_arguments,
)
from .waiting import say

# A CPU type by default: the CPU image is the one an MME runs.
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
CPU_IMAGE = "use the CPU image (build_and_push.sh --cpu)"
# InvokeEndpoint's TargetModel header: 1 to 1024 characters matching \A\S[\p{Print}]*\z,
# printable ASCII not starting with a space.
MAX_TARGET_MODEL = 1024
_TARGET_MODEL = re.compile(r"^[!-~][ -~]*$")
ARCHIVE_SUFFIX = ".tar.gz"
MAX_S3_KEY = 1024  # bytes of UTF-8
# CopyObject copies objects of up to 5 GiB in one request.
MAX_COPY_BYTES = 5 * 1024**3


def check_model_prefix(uri: str | None) -> str:
    """The S3 prefix a multi-model endpoint serves: s3://bucket/models/, ending in /."""
    if not uri:
        raise LauncherError(
            "a multi-model endpoint needs the S3 prefix of its model.tar.gz files "
            "(--model-prefix s3://bucket/models/)"
        )
    return check_s3_prefix(uri, "model prefix")


def check_cpu_instance(instance_type: str) -> str:
    """`instance_type` unless it has GPUs or accelerators, which an MME of this image cannot use."""
    if is_accelerated(instance_type):
        raise LauncherError(
            f"instance type {instance_type}: SageMaker runs a custom container as a "
            f"multi-model endpoint on CPU instances only; {CPU_IMAGE} on a CPU type such "
            f"as {DEFAULT_INSTANCE_TYPE}"
        )
    return instance_type


def check_target_model(name: Any, what: str = "target model") -> str:
    """A model's key relative to the endpoint's prefix, as InvokeEndpoint takes it."""
    if not isinstance(name, str) or not name:
        raise LauncherError(
            f"{what}: expected the model's key under the endpoint's prefix, e.g. customer-42.tar.gz"
        )
    shown = repr(name if len(name) <= 80 else name[:80] + "...")
    if len(name) > MAX_TARGET_MODEL:
        raise LauncherError(
            f"{what} {shown}: {len(name)} characters, SageMaker takes at most {MAX_TARGET_MODEL}"
        )
    if not _TARGET_MODEL.match(name):
        raise LauncherError(
            f"{what} {shown}: printable ASCII characters only, not starting with a space"
        )
    if name.startswith(("s3:", "http:", "https:")):
        raise LauncherError(
            f"{what} {shown}: the key under the endpoint's prefix (customer-42.tar.gz), not a URI"
        )
    if name.startswith("/"):
        raise LauncherError(
            f"{what} {shown}: a key relative to the endpoint's prefix, without a leading /"
        )
    if name.endswith("/"):
        raise LauncherError(f"{what} {shown}: names a folder, not a model.tar.gz")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise LauncherError(f"{what} {shown}: no empty, '.' or '..' parts between slashes")
    return name


def check_model_name(name: Any) -> str:
    """The key `add_model` writes under a prefix: a target model ending in .tar.gz."""
    check_target_model(name, "model name")
    if not name.endswith(ARCHIVE_SUFFIX) or name.rsplit("/", 1)[-1] == ARCHIVE_SUFFIX:
        raise LauncherError(
            f"model name {name!r}: a multi-model endpoint loads .tar.gz archives; "
            f"end it with {ARCHIVE_SUFFIX} (customer-42.tar.gz)"
        )
    return name


@dataclass(frozen=True)
class AddModelPlan:
    """What `add_model` copies, checked; no request has been made."""

    target: Target
    training_job: str | None
    model_data: str | None  # the source model.tar.gz, when not a training job's
    model_prefix: str
    name: str  # the key under the prefix, and the TargetModel that invokes it
    overwrite: bool

    @property
    def destination(self) -> str:
        return self.model_prefix + self.name


def plan_add_model(
    *,
    model_prefix: str,
    training_job: str | None = None,
    model_data: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
    region: str | None = None,
    boto_session: Any = None,
) -> AddModelPlan:
    """Check an `add_model`; raises LauncherError, sends nothing."""
    target = resolve(region, boto_session=boto_session)
    if sum(map(bool, (training_job, model_data))) != 1:
        raise LauncherError(
            "give exactly one of a training job (its model.tar.gz) or a model.tar.gz S3 URI"
        )
    check_s3_prefix(model_prefix, "destination prefix")
    if model_data:
        check_s3_uri(model_data, "source model")
        key = split_s3_uri(model_data)[1]
        if not key.endswith(ARCHIVE_SUFFIX):
            raise LauncherError(f"source model {model_data!r}: expected a .tar.gz archive")
        if name is None:
            name = posixpath.basename(key)
            if name == "model.tar.gz":
                raise LauncherError(
                    f"source model {model_data!r}: give it a name under the prefix, e.g. "
                    "--name customer-42.tar.gz (model.tar.gz would say nothing of which "
                    "model it is)"
                )
    elif name is None:
        name = f"{training_job}{ARCHIVE_SUFFIX}"
    key = split_s3_uri(model_prefix)[1] + check_model_name(name)
    if len(key.encode("utf-8")) > MAX_S3_KEY:
        raise LauncherError(
            f"{model_prefix}{name}: S3 keys take at most {MAX_S3_KEY} bytes; shorten the name"
        )
    return AddModelPlan(
        target=target,
        training_job=training_job,
        model_data=model_data,
        model_prefix=model_prefix,
        name=check_model_name(name),
        overwrite=bool(overwrite),
    )


@takes_plan_arguments(plan_add_model)
def add_model(*, boto_session: Any = None, **launch: Any) -> str:
    """Copy a model.tar.gz under a multi-model endpoint's prefix; returns its S3 URI.

    `launch` takes `plan_add_model`'s keyword arguments: model_prefix= (s3://.../models/),
    training_job= (a Completed job: its model.tar.gz) or model_data= (any model.tar.gz),
    name= (the key under the prefix, and the target model that invokes it; default
    <training job>.tar.gz, or the source's file name) and overwrite= (replace an object
    already there; without it, an existing key is refused). One S3 CopyObject, inside S3.
    """
    plan = plan_add_model(boto_session=boto_session, **launch)
    session = boto_session or plan.target.boto_session()
    dry = is_dry_run(session)
    source = plan.model_data
    if source is None:
        from .models import model_data_of

        source = model_data_of(plan.training_job, session)
    if source == plan.destination:
        raise LauncherError(f"{source} is already under the prefix as {plan.name}")
    s3 = session.client("s3")
    if dry and not source.startswith("s3://"):  # a placeholder read in a dry run
        copy_source: Any = source
    else:
        bucket, key = split_s3_uri(source)
        copy_source = {"Bucket": bucket, "Key": key}
        size = _size(s3, bucket, key)
        if size is None:
            raise LauncherError(f"source model {source}: no such object")
        if size > MAX_COPY_BYTES:
            raise LauncherError(
                f"source model {source}: {size} bytes, over the 5 GiB one S3 copy takes; "
                "a model that large is no multi-model endpoint's"
            )
    bucket, key = split_s3_uri(plan.destination)
    # A dry run cannot know whether the key exists; IfNoneMatch guards the real copy too.
    if not plan.overwrite and not dry and _size(s3, bucket, key) is not None:
        raise LauncherError(
            f"{plan.destination} exists: pass --overwrite (overwrite=True) to replace it, "
            "or add the new version under a new name (an instance that has the old one "
            "loaded keeps serving it)"
        )
    condition = {} if plan.overwrite else {"IfNoneMatch": "*"}
    try:
        s3.copy_object(Bucket=bucket, Key=key, CopySource=copy_source, **condition)
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
            raise
        raise LauncherError(
            f"{plan.destination} appeared while it was being copied: left as it is"
        ) from None
    say(f"added {plan.destination} (from {source}); invoke it with --target-model {plan.name}")
    return plan.destination


def _size(s3: Any, bucket: str, key: str) -> int | None:
    """The object's size in bytes, or None when there is none."""
    try:
        return int(s3.head_object(Bucket=bucket, Key=key).get("ContentLength", 0))
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise

"""Launch this image on Amazon SageMaker from Python or the shell (SDK v3 + boto3).

    from launcher import train, deploy, invoke, transform, delete

    job = train(train="s3://bucket/data/train/", hyperparameters={"epochs": 3})
    endpoint = deploy(training_job=job.name, serving={"max_batch_size": 64})
    print(invoke(endpoint.endpoint_name, {"text": "my parcel never arrived"}).json())
    delete(endpoint.endpoint_name)

    # Many models on one endpoint: a multi-model endpoint (CPU) serving an S3 prefix ...
    deploy(multi_model=True, model_prefix="s3://bucket/models/", name="per-customer")
    add_model(training_job=job.name, model_prefix="s3://bucket/models/", name="c-42.tar.gz")
    invoke("per-customer", {"text": "hi"}, target_model="c-42.tar.gz")
    # ... or inference components, each with its own copies, reservations and scaling.
    deploy_component(name="support-en", endpoint="shared", training_job=job.name,
                     memory_mb=2048, create_endpoint=True)
    invoke("shared", {"text": "hi"}, component="support-en")
    delete_component("support-en")

    best = tune(train="s3://bucket/data/train/", validation="s3://bucket/data/val/",
                ranges={"learning_rate": "1e-5:1e-3:log", "pooling": ["mean", "cls"]},
                objective="val_f1", max_jobs=8, max_parallel_jobs=2)
    endpoint = deploy(tuning_job=best.name)

    print(dry_run(train, train="s3://bucket/data/train/").as_json())  # checked, not sent

The same from a shell: `python -m launcher --help` (or `byoc-launch` once installed).

Hyperparameters and serving settings are checked with the container's own parsers
(`sagemaker_platform`, under `model/`) before any request; in a checkout that folder
is put on sys.path here, so `python -m launcher` works from the repository root without
installing anything. The SageMaker SDK is imported only when a command needs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
if (_MODEL_DIR / "sagemaker_platform").is_dir() and str(_MODEL_DIR) not in sys.path:
    sys.path.append(str(_MODEL_DIR))

from .batch import plan_transform, transform, wait_for_transform  # noqa: E402
from .components import (  # noqa: E402
    autoscale_component,
    delete_component,
    deploy_component,
    plan_component,
    wait_for_component,
)
from .dryrun import dry_run  # noqa: E402
from .endpoints import (  # noqa: E402
    autoscale,
    delete,
    delete_model,
    deploy,
    describe_endpoint,
    plan_deployment,
    wait_for_endpoint,
)
from .invoking import invoke, invoke_async  # noqa: E402
from .jobs import plan_training, train, wait_for_training  # noqa: E402
from .metrics import metric_definitions  # noqa: E402
from .multimodel import add_model, plan_add_model  # noqa: E402
from .settings import LauncherError  # noqa: E402
from .tuning import describe_tuning, plan_tuning, tune, wait_for_tuning  # noqa: E402
from .waiting import JobFailed, WaitTimeout  # noqa: E402

__all__ = [
    "JobFailed",
    "LauncherError",
    "WaitTimeout",
    "add_model",
    "autoscale",
    "autoscale_component",
    "delete",
    "delete_component",
    "delete_model",
    "deploy",
    "deploy_component",
    "describe_endpoint",
    "describe_tuning",
    "dry_run",
    "invoke",
    "invoke_async",
    "metric_definitions",
    "plan_add_model",
    "plan_component",
    "plan_deployment",
    "plan_training",
    "plan_transform",
    "plan_tuning",
    "train",
    "transform",
    "tune",
    "wait_for_component",
    "wait_for_endpoint",
    "wait_for_training",
    "wait_for_transform",
    "wait_for_tuning",
]

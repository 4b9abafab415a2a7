"""Calling an endpoint: one request (`invoke`) or an asynchronous one through S3.

`invoke` goes straight through boto3's `sagemaker-runtime` client; `invoke_async`
writes the payload to S3 first, then polls S3 for the response. A payload is any content
type the model's plug-in declares (`payloads`): bytes go as they are, both ways.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from . import payloads
from .multimodel import check_target_model
from .settings import (
    LauncherError,
    check_name,
    check_s3_uri,
    is_dry_run,
    resolve,
    split_s3_uri,
)
from .waiting import JobFailed, Status, say, wait_for

# InvokeEndpoint: a body of at most 6 MB; its headers (custom attributes) 1024 ASCII
# characters. An async request's body goes through S3 instead.
MAX_BODY_BYTES = 6 * 1024 * 1024
MAX_HEADER = 1024


@dataclass(frozen=True)
class Response:
    body: bytes
    content_type: str | None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def encode_payload(
    payload: Any, content_type: str | None, plugin: str | None = None
) -> tuple[bytes, str]:
    """(body, content type): objects become JSON, text is UTF-8, bytes pass through as
    they are. Any well-formed media type goes; with `plugin` (a plug-in name), only the
    types that plug-in declares."""
    if isinstance(payload, (dict, list)):
        if content_type not in (None, payloads.JSON):
            raise LauncherError(f"a {type(payload).__name__} payload is sent as application/json")
        body, content_type = json.dumps(payload).encode("utf-8"), payloads.JSON
    elif isinstance(payload, (str, bytes)):
        content_type = payloads.check_content_type(content_type or payloads.JSON)
        body = payload.encode("utf-8") if isinstance(payload, str) else payload
    else:
        raise LauncherError(
            f"payload of type {type(payload).__name__}: send bytes, str, dict or list"
        )
    if plugin is not None:
        payloads.check_plugin_takes(plugin, content_type)
    return body, content_type


def invoke(
    endpoint_name: str,
    payload: Any,
    *,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    model: str | None = None,
    target_model: str | None = None,
    component: str | None = None,
    region: str | None = None,
    boto_session: Any = None,
) -> Response:
    """One request to a real-time or serverless endpoint through `sagemaker-runtime`.
    `custom_attributes` reaches the plug-in's decode/encode as options (`top_k=3`);
    `model`, the plug-in's name, checks the content type and accept against the types
    it declares before anything is sent. On a multi-model endpoint `target_model` names
    the model, its key under the endpoint's prefix (customer-42.tar.gz); on an endpoint
    of inference components, `component` names the component."""
    target = resolve(region, boto_session=boto_session)
    check_name(endpoint_name, "endpoint name")
    routing = _routing(target_model, component)
    body, content_type = encode_payload(payload, content_type, model)
    if len(body) > MAX_BODY_BYTES:
        raise LauncherError(
            f"payload of {len(body)} bytes: a real-time or serverless invocation takes at most "
            f"{MAX_BODY_BYTES} (6 MB); send it to an async endpoint (--async-input-s3-uri) or "
            "run a batch transform"
        )
    args = {"EndpointName": endpoint_name, "Body": body, "ContentType": content_type}
    args.update(_optional(accept, custom_attributes, model))
    args.update(routing)
    session = boto_session or target.boto_session()
    response = session.client("sagemaker-runtime").invoke_endpoint(**args)
    return Response(response["Body"].read(), response.get("ContentType"))


def invoke_async(
    endpoint_name: str,
    payload: Any,
    *,
    input_s3_uri: str,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    model: str | None = None,
    wait: bool = True,
    poll_seconds: float = 5.0,
    timeout_seconds: float | None = 900.0,
    region: str | None = None,
    boto_session: Any = None,
) -> Response | str:
    """A request to an asynchronous endpoint: the payload goes to S3 first, as its bytes
    and content type.

    `input_s3_uri` is the object to write, or a prefix ending in `/` (a unique key is
    added, with the content type's extension). With `wait`, polls S3 for the response
    and returns it; otherwise returns the S3 URI where the response will appear.
    """
    target = resolve(region, boto_session=boto_session)
    check_name(endpoint_name, "endpoint name")
    check_s3_uri(input_s3_uri, "async input")
    if not input_s3_uri.endswith("/") and not split_s3_uri(input_s3_uri)[1]:
        raise LauncherError(
            f"async input {input_s3_uri!r} names a bucket: add a key, or end it with / "
            "for a fresh key under it"
        )
    body, content_type = encode_payload(payload, content_type, model)
    optional = _optional(accept, custom_attributes, model)
    session = boto_session or target.boto_session()
    if input_s3_uri.endswith("/"):
        input_s3_uri += f"{uuid.uuid4().hex}{payloads.extension_for(content_type)}"
    check_s3_uri(input_s3_uri, "async input")  # InputLocation: the key added fits too
    bucket, key = split_s3_uri(input_s3_uri)
    s3 = session.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    args = {
        "EndpointName": endpoint_name,
        "InputLocation": input_s3_uri,
        "ContentType": content_type,
        **optional,
    }
    response = session.client("sagemaker-runtime").invoke_endpoint_async(**args)
    output, failure = response["OutputLocation"], response.get("FailureLocation")
    say(f"request {response.get('InferenceId')} queued; response will be at {output}")
    if not wait or is_dry_run(session):
        return output

    def poll() -> Status:
        for state, uri in (("done", output), ("failed", failure)):
            if uri and _s3_exists(s3, uri):
                return Status(state, uri)
        return Status("queued")

    final = wait_for(
        f"async request to {endpoint_name}",
        poll,
        ("done", "failed"),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )
    bucket, key = split_s3_uri(final.detail)
    obj = s3.get_object(Bucket=bucket, Key=key)
    result = Response(obj["Body"].read(), obj.get("ContentType"))
    if final.state == "failed":
        raise JobFailed(f"async request failed: {result.text[:1000]}", result)
    return result


def _routing(target_model: str | None, component: str | None) -> dict[str, str]:
    """InvokeEndpoint's TargetModel (a multi-model endpoint's model) or
    InferenceComponentName, checked."""
    if target_model is not None and component is not None:
        raise LauncherError(
            "a target model is a multi-model endpoint's, a component an endpoint of "
            "inference components': give one of them"
        )
    if target_model is not None:
        return {"TargetModel": check_target_model(target_model)}
    if component is not None:
        return {"InferenceComponentName": check_name(component, "component name")}
    return {}


def _optional(
    accept: str | None, custom_attributes: str | None, plugin: str | None
) -> dict[str, str]:
    """InvokeEndpoint's optional headers, when given; `accept` checked against the
    answer types of `plugin` when it names one."""
    if accept and plugin is not None:
        payloads.check_plugin_answers(plugin, accept)
    if custom_attributes and (
        len(custom_attributes) > MAX_HEADER or not custom_attributes.isascii()
    ):
        raise LauncherError(
            f"custom attributes: {len(custom_attributes)} characters; SageMaker takes up to "
            f"{MAX_HEADER} ASCII characters"
        )
    args = {"Accept": accept, "CustomAttributes": custom_attributes}
    return {k: v for k, v in args.items() if v}


def _s3_exists(s3: Any, uri: str) -> bool:
    bucket, key = split_s3_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True

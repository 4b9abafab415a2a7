"""`invoke`: send one payload to an endpoint (`invoking.invoke`, `invoking.invoke_async`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import invoking, payloads
from ..settings import LauncherError
from ..waiting import JobFailed
from .options import add_command, add_dry_run, add_target, add_wait, launch, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "invoke",
        "send one payload to an endpoint",
        "Send a payload through sagemaker-runtime and print the response. With "
        "--async-input-s3-uri the payload is written to S3 and sent asynchronously, and "
        "the response is fetched from S3 when it appears. A file goes as its bytes, of any "
        "content type the model's plug-in reads (an image, a .npy array, ...); a binary "
        "answer is written as bytes (--output FILE, or stdout when redirected). An async "
        "request leaves its payload and its answer in S3.",
    )
    add_target(p, role_and_image=False)
    p.add_argument("--endpoint", required=True, metavar="NAME", help="endpoint name")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="the request body, as text")
    g.add_argument("--file", type=Path, help="a file holding the request body ('-' for stdin)")
    p.add_argument(
        "--content-type",
        metavar="TYPE",
        help="any media type the plug-in reads (default: from the file extension, .png "
        "image/png, .jpg image/jpeg, .npy application/x-npy, .csv text/csv, ...; else "
        "application/json)",
    )
    p.add_argument("--accept", metavar="TYPE", help="response content type to ask for")
    p.add_argument(
        "--custom-attributes",
        metavar="TEXT",
        help="X-Amzn-SageMaker-Custom-Attributes, options for the model (e.g. top_k=3)",
    )
    p.add_argument(
        "--model",
        dest="plugin",
        metavar="PLUGIN",
        help="the endpoint's plug-in: content type and accept are checked against the "
        "types it declares before anything is sent",
    )
    p.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write the response body here, as its bytes (default: stdout)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--target-model",
        metavar="KEY",
        help="a multi-model endpoint's model: its key under the endpoint's prefix "
        "(customer-42.tar.gz)",
    )
    g.add_argument("--component", metavar="NAME", help="an inference component of the endpoint")
    p.add_argument(
        "--async-input-s3-uri",
        metavar="S3_URI",
        help="async endpoints: an S3 key, or a prefix ending in /, for the payload",
    )
    add_wait(p, poll=5.0, timeout=900.0)
    add_dry_run(p)


def run(args: argparse.Namespace) -> None:
    if args.file is not None:
        stdin = str(args.file) == "-"
        # Bytes as they are: never decoded, whatever the file holds.
        payload = sys.stdin.buffer.read() if stdin else _read(args.file)
        content_type = args.content_type or (
            None if stdin else payloads.content_type_for(args.file)
        )
    else:
        payload, content_type = args.data, args.content_type
    common = {
        "content_type": content_type,
        "accept": args.accept,
        "custom_attributes": args.custom_attributes,
        "model": args.plugin,
        **target(args),
    }
    routing = {"target_model": args.target_model, "component": args.component}
    if args.async_input_s3_uri:
        if args.target_model is not None or args.component is not None:
            flag = "--target-model" if args.target_model is not None else "--component"
            raise LauncherError(
                f"{flag}: asynchronous requests go to a whole endpoint (InvokeEndpointAsync "
                "names no model or component); invoke multi-model endpoints and inference "
                "components in real time"
            )
        result = launch(
            args,
            invoking.invoke_async,
            args.endpoint,
            payload,
            input_s3_uri=args.async_input_s3_uri,
            wait=args.wait,
            poll_seconds=args.poll_seconds,
            timeout_seconds=args.wait_timeout,
            **common,
        )
    else:
        result = launch(args, invoking.invoke, args.endpoint, payload, **common, **routing)
    if isinstance(result, invoking.Response):
        write_body(result, args.output)
    elif result is not None:  # async without waiting: where the answer will be
        print(result)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LauncherError(f"--file {str(path)!r}: {exc.strerror or exc}") from None


def write_body(response: invoking.Response, output: Path | None) -> None:
    """The answer's bytes to `output`, or to stdout: text ends with a newline there, and
    a binary answer is not poured onto a terminal."""
    body = response.body
    if output is not None:
        try:
            output.write_bytes(body)
        except OSError as exc:
            raise LauncherError(f"--output {str(output)!r}: {exc.strerror or exc}") from None
        print(f"{len(body)} bytes ({response.content_type}) written to {output}", file=sys.stderr)
        return
    text = payloads.is_text(body)
    if not text and sys.stdout.isatty():
        raise JobFailed(
            f"the answer is binary ({response.content_type}, {len(body)} bytes) and stdout "
            "is a terminal: pass --output FILE, or redirect stdout"
        )
    sys.stdout.flush()
    sys.stdout.buffer.write(body + (b"\n" if text and not body.endswith(b"\n") else b""))
    sys.stdout.buffer.flush()

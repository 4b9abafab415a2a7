"""`invoke`: send one payload to an endpoint (`invoking.invoke`, `invoking.invoke_async`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import invoking
from .options import add_command, add_target, add_wait, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "invoke",
        "send one payload to an endpoint",
        "Send a payload through sagemaker-runtime and print the response. With "
        "--async-input-s3-uri the payload is written to S3 and sent asynchronously, and "
        "the response is fetched from S3 when it appears.",
    )
    add_target(p, role_and_image=False)
    p.add_argument("--endpoint", required=True, metavar="NAME", help="endpoint name")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="the request body, as text")
    g.add_argument("--file", type=Path, help="a file holding the request body ('-' for stdin)")
    p.add_argument(
        "--content-type",
        choices=invoking.CONTENT_TYPES,
        help="(default: from the file extension, else application/json)",
    )
    p.add_argument("--accept", help="response content type to ask for")
    p.add_argument(
        "--custom-attributes",
        metavar="TEXT",
        help="X-Amzn-SageMaker-Custom-Attributes, options for the model (e.g. top_k=3)",
    )
    p.add_argument(
        "--async-input-s3-uri",
        metavar="S3_URI",
        help="async endpoints: an S3 key, or a prefix ending in /, for the payload",
    )
    add_wait(p, poll=5.0, timeout=900.0)


def run(args: argparse.Namespace) -> None:
    if args.file is not None:
        payload = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
        content_type = args.content_type or (
            invoking.content_type_for(args.file) if str(args.file) != "-" else None
        )
    else:
        payload, content_type = args.data, args.content_type
    common = {
        "content_type": content_type,
        "accept": args.accept,
        "custom_attributes": args.custom_attributes,
        **target(args),
    }
    if args.async_input_s3_uri:
        result = invoking.invoke_async(
            args.endpoint,
            payload,
            input_s3_uri=args.async_input_s3_uri,
            wait=args.wait,
            poll_seconds=args.poll_seconds,
            timeout_seconds=args.wait_timeout,
            **common,
        )
    else:
        result = invoking.invoke(args.endpoint, payload, **common)
    if isinstance(result, invoking.Response):
        sys.stdout.write(result.text + ("" if result.text.endswith("\n") else "\n"))
    else:
        print(result)

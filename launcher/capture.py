"""Data capture: an endpoint's requests and answers, sampled, written to S3 for monitoring.

SageMaker writes each captured invocation as one JSON line under
`<s3 uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/`, with the request and the answer and their
content types. Bodies whose content type is listed as CSV or JSON are kept as text;
anything else (text/plain, say) is kept base64-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import MAX_DESTINATION_S3_URI, LauncherError, check_s3_uri

# What both plug-ins read and answer (JSON, JSON Lines, CSV); text/plain goes as base64.
DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json", "application/jsonlines")
MAX_TYPES = 10  # CaptureContentTypeHeader: at most 10 of each


@dataclass(frozen=True)
class CapturePlan:
    s3_uri: str
    percent: int  # InitialSamplingPercentage, 0-100
    csv_types: tuple[str, ...]
    json_types: tuple[str, ...]

    def shape(self):
        """DataCaptureConfig for `sagemaker.core`'s EndpointConfig.create."""
        from sagemaker.core.shapes import CaptureContentTypeHeader, CaptureOption, DataCaptureConfig

        header = {}  # each list, when sent, holds 1 to 10 types
        if self.csv_types:
            header["csv_content_types"] = list(self.csv_types)
        if self.json_types:
            header["json_content_types"] = list(self.json_types)
        return DataCaptureConfig(
            enable_capture=True,
            initial_sampling_percentage=self.percent,
            destination_s3_uri=self.s3_uri,
            capture_options=[CaptureOption(capture_mode=m) for m in ("Input", "Output")],
            capture_content_type_header=CaptureContentTypeHeader(**header),
        )


def plan_capture(
    mode: str,
    s3_uri: str | None,
    percent: int | None = None,
    content_types: list[str] | tuple[str, ...] | None = None,
) -> CapturePlan | None:
    """The checked plan, or None without an S3 URI; LauncherError for anything wrong."""
    if not s3_uri:
        if percent is not None or content_types:
            raise LauncherError("data capture needs an S3 URI to write to (--capture-s3-uri)")
        return None
    check_s3_uri(s3_uri, "data capture", max_length=MAX_DESTINATION_S3_URI)
    if mode == "serverless":
        raise LauncherError(
            "data capture: SageMaker does not capture serverless endpoints' data; deploy "
            "realtime or async to capture"
        )
    percent = 100 if percent is None else percent
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise LauncherError(f"capture percent {percent!r}: expected a whole number 0 to 100")
    csv_types, json_types = _split_types(content_types)
    return CapturePlan(s3_uri, percent, csv_types, json_types)


def _split_types(types) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not types:
        return DEFAULT_CSV_TYPES, DEFAULT_JSON_TYPES
    csv, json = [], []
    for kind in types:
        kind = kind.strip().lower()
        _, slash, subtype = kind.partition("/")
        if not slash or not subtype or " " in kind or ";" in kind:
            raise LauncherError(f"capture content type {kind!r}: expected a type/subtype")
        if "csv" in subtype:
            csv.append(kind)
        elif "json" in subtype:
            json.append(kind)
        else:
            raise LauncherError(
                f"capture content type {kind!r}: only CSV and JSON types are listed "
                "(SageMaker keeps any other type base64-encoded anyway)"
            )
    for what, listed in (("CSV", csv), ("JSON", json)):
        if len(listed) > MAX_TYPES:
            raise LauncherError(f"{len(listed)} {what} capture content types: at most {MAX_TYPES}")
    return tuple(dict.fromkeys(csv)), tuple(dict.fromkeys(json))

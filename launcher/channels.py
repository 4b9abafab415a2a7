"""How a training job's S3 channels reach the hosts: distribution and input mode.

    --distribution sharded              the train channel: each host gets a different part
                                        of its S3 objects (ShardedByS3Key)
    --distribution validation=sharded   any channel by name (repeatable); `replicated`
                                        (FullyReplicated, every host every object) is the
                                        default
    --input-mode FastFile               File (downloaded before training starts, the
                                        default) or FastFile (streamed from S3 as it is
                                        read); Pipe is refused: the image reads files

The container reads the same settings from inputdataconfig.json (see docs/training.md's
"Sharded and streamed input"): a sharded channel is split among each host's processes
only, and the hosts even their steps per epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sagemaker_platform import contract

from .settings import LauncherError

DISTRIBUTIONS = {"sharded": contract.SHARDED_BY_S3_KEY, "replicated": contract.FULLY_REPLICATED}
INPUT_MODES = (contract.FILE_MODE, contract.FAST_FILE_MODE)
DEFAULT_SHARDED_CHANNEL = "train"


def parse_distribution(values: Iterable[str] | None) -> dict[str, str]:
    """`--distribution` flags as {channel: sharded|replicated}; a bare value is train's."""
    parsed: dict[str, str] = {}
    for value in values or ():
        channel, sep, kind = value.rpartition("=")
        parsed[channel.strip() if sep else DEFAULT_SHARDED_CHANNEL] = kind.strip()
    return parsed


def distribution_types(
    distribution: str | Mapping[str, str] | None, channels: Iterable[str]
) -> dict[str, str]:
    """S3DataDistributionType for each channel of the job, from `sharded`/`replicated`
    (for train) or {channel: kind}; every channel named must be one of the job's."""
    if isinstance(distribution, str):
        distribution = {DEFAULT_SHARDED_CHANNEL: distribution}
    names = list(channels)
    types = dict.fromkeys(names, contract.FULLY_REPLICATED)
    for channel, kind in (distribution or {}).items():
        if kind not in DISTRIBUTIONS:
            raise LauncherError(f"distribution {channel}={kind!r}: expected sharded or replicated")
        if channel not in types:
            raise LauncherError(
                f"distribution {channel}={kind}: the job has no channel {channel!r} "
                f"(its channels: {', '.join(names)})"
            )
        if channel == contract.PRETRAINED_CHANNEL and kind == "sharded":
            raise LauncherError(
                "the pretrained channel cannot be sharded: every host needs the whole backbone"
            )
        types[channel] = DISTRIBUTIONS[kind]
    return types


def check_input_mode(mode: str) -> str:
    if mode == contract.PIPE_MODE:
        raise LauncherError(
            "input mode Pipe: this image reads a channel's files, not a Pipe stream; "
            "use File or FastFile"
        )
    if mode not in INPUT_MODES:
        raise LauncherError(f"input mode {mode!r}: expected File or FastFile")
    return mode


def sdk_channels(
    uris: Mapping[str, str], distribution: Mapping[str, str], input_mode: str
) -> list[Any]:
    """The SDK v3 Channels of a training job (S3 prefixes, with their distribution and
    input mode), as CreateTrainingJob's InputDataConfig takes them."""
    from sagemaker.core.shapes import Channel, DataSource, S3DataSource

    return [
        Channel(
            channel_name=name,
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type="S3Prefix",
                    s3_uri=uri,
                    s3_data_distribution_type=distribution.get(name, contract.FULLY_REPLICATED),
                )
            ),
            input_mode=input_mode,
        )
        for name, uri in uris.items()
    ]

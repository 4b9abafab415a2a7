#!/usr/bin/env python3
"""Regenerate the docs' tables from the code: the hyperparameter and serving tables from
the config dataclasses, the platform's and each shipped plug-in's (markers
`hyperparameters-NAME` in docs/training.md, `serving-NAME` in docs/serving.md), and the
reference of the helpers a plug-in may call, with their signatures (marker `helpers` in
docs/bring-your-own-model.md).

    python scripts/update_readme.py          (make readme)

tests/unit/test_readme.py fails when the docs and the dataclasses disagree.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "model"))
sys.path.insert(0, str(ROOT))  # the launcher, whose metric definitions are a table

from sagemaker_platform import registry  # noqa: E402
from sagemaker_platform.config import (  # noqa: E402
    ClusterSettings,
    ServeConfig,
    TrainSettings,
    describe,
)

# Which page holds which kind of table.
PAGES = {
    "hyperparameters": "docs/training.md",
    "serving": "docs/serving.md",
    "helpers": "docs/bring-your-own-model.md",
    "metrics": "docs/training.md",
    "cluster": "docs/training.md",
}

# What a plug-in may call or use from the platform, module by module (the rest of the
# platform is its own business). A name that no longer exists fails `make readme` and
# tests/unit/test_readme.py.
HELPERS: dict[str, tuple[str, ...]] = {
    "plugin": ("Plugin", "TrainingData", "TrainContext", "Monitor", "NoHyperparameters"),
    "config": ("setting", "parse_env", "ConfigError"),
    "errors": ("UserError",),
    "channels": ("SOURCE", "PATH", "RELATIVE", "SIZE"),
    "splitting": (
        "held_out",
        "label_names",
        "encode_labels",
        "stratified_split",
        "random_split",
        "class_weights",
    ),
    "loaders": ("train_loader", "eval_loader"),
    "evaluation": (
        "classification_evaluation",
        "classification_report",
        "regression_report",
        "plot_confusion_matrix",
        "plot_predicted_vs_actual",
    ),
    "artifacts": (
        "CHECKPOINT",
        "MAX_JSON_BYTES",
        "read_json",
        "member",
        "check_int",
        "check_number",
        "check_str",
        "check_choice",
        "check_list",
        "check_distinct",
        "check_labels",
        "corrupt",
        "shown",
        "first_line",
        "load_checkpoint",
        "load_state_dict",
    ),
    "contract": ("PRETRAINED_CHANNEL",),
    "archives": ("extract", "Limits"),
    "runtime": ("Runtime", "Runtime.in_parts"),
    "bf16": (
        "bf16_matmuls",
        "recheck",
        "compare",
        "near_ties",
        "NEAR_TIE",
        "Bf16Linear",
        "OneDNNLinear",
        "onednn_bf16",
        "shared_copy",
    ),
    "codecs": (
        "HTTPError",
        "JSON",
        "JSONLINES",
        "CSV",
        "TEXT",
        "RECORD_KEYS",
        "ID_KEY",
        "body_text",
        "parse_json",
        "json_records",
        "jsonlines_values",
        "csv_rows",
        "decode_records",
        "check_records",
        "parse_options",
        "int_option",
        "top_k",
        "record_id",
        "class_answer",
        "class_csv_row",
        "answers_csv",
        "encode_json",
        "encode_jsonlines",
        "encode_csv",
        "encode_records",
    ),
    "logs": ("kv", "inert"),
}


# What the constants among HELPERS are for (a constant has no docstring of its own).
CONSTANTS = {
    "SOURCE": "the column naming each row's file (`train/a.csv`): name it in errors",
    "PATH": "files: the column holding each file's absolute path, what your Dataset opens",
    "RELATIVE": "files: the column holding each file's path inside its channel (`cat/1.png`), `/`-separated",
    "SIZE": "files: the column holding each file's size in bytes, from the listing (nothing is read)",
    "RECORD_KEYS": 'the keys whose list holds a JSON request\'s records (`{"instances": [...]}`)',
    "ID_KEY": "a record's own id: `answers_csv` and `class_answer` echo it first in its answer",
    "JSON": "a media type `decode` and `encode` compare against",
    "JSONLINES": "a media type (its aliases, `application/x-jsonlines` and the like, map to it)",
    "CSV": "a media type",
    "TEXT": "a media type",
    "CHECKPOINT": "the weights' file in the model directory, which the platform writes and loads",
    "MAX_JSON_BYTES": "the largest model-directory JSON file `read_json` reads (8 MB)",
    "PRETRAINED_CHANNEL": "the channel `launcher train --pretrained` fills: find its folder in `TrainingData.channels`",
    "NEAR_TIE": "the margin `near_ties` and `recheck` use, as a share of the largest logit magnitude in the row",
}


def metrics_table() -> str:
    """Every shipped plug-in's metric definitions, as the launcher registers them."""
    from launcher import metrics

    return metrics.as_markdown().rstrip("\n")


def helpers_table() -> str:
    """One row per helper: `module.name(signature)` and its docstring's first sentence."""
    lines = ["| helper | what it does |", "| --- | --- |"]
    for module_name, names in HELPERS.items():
        module = importlib.import_module(f"sagemaker_platform.{module_name}")
        for name in names:
            obj = module  # AttributeError: HELPERS names a removed helper
            for part in name.split("."):  # a class's method: "Runtime.in_parts"
                obj = getattr(obj, part)
            lines.append(f"| `{_signature(module_name, name, obj)}` | {_summary(name, obj)} |")
    return "\n".join(lines)


def _signature(module_name: str, name: str, obj) -> str:
    if not callable(obj):
        return f"{module_name}.{name} = {obj!r}"
    if inspect.isclass(obj) and not _is_dataclass(obj):
        return f"{module_name}.{name}"
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return f"{module_name}.{name}"
    # `from __future__ import annotations` makes every annotation a string: unquote them
    sig = re.sub(r"(: |-> )'([^']*)'", r"\1\2", sig).replace("(self, ", "(")
    return f"{module_name}.{name}{sig}".replace("|", "\\|")


def _is_dataclass(cls) -> bool:
    return hasattr(cls, "__dataclass_fields__")


def _summary(name: str, obj) -> str:
    if not callable(obj):
        return CONSTANTS[name]
    doc = inspect.getdoc(obj) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z`])", paragraph)[0]
    return sentence.replace("|", "\\|") or "(no docstring)"


def sections(kind: str | None = None) -> dict[str, Callable[[], str]]:
    """Every generated table by its marker, as a function that renders it (only those of
    `kind`: "hyperparameters", "serving" or "helpers", when given)."""
    out: dict[str, Callable[[], str]] = {
        "hyperparameters": partial(table, TrainSettings, "hyperparameter"),
        "serving": partial(table, ServeConfig, "variable"),
        "helpers": helpers_table,
        "metrics": metrics_table,
        "cluster": partial(table, ClusterSettings, "variable"),
    }
    for name in registry.available():
        plugin = registry.load(name)
        out[f"hyperparameters-{name}"] = partial(table, plugin.Hyperparameters, "hyperparameter")
        if plugin.ServeSettings is not None:
            out[f"serving-{name}"] = partial(table, plugin.ServeSettings, "variable")
    if kind is None:
        return out
    return {m: v for m, v in out.items() if m.partition("-")[0] == kind}


def table(cls, first: str) -> str:
    lines = [f"| {first} | default | meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | {f'`{default}`' if default else '(empty)'} | {meaning} |"
        for name, default, meaning in describe(cls)
    ]
    return "\n".join(lines)


def render(text: str, kind: str) -> str:
    """`text` (the page of `kind`'s tables) with every table of that kind regenerated."""
    for marker, make in sections(kind).items():
        if f"<!-- {marker}:start" not in text:
            text = _add_section(text, marker)
        pattern = re.compile(rf"(<!-- {marker}:start[^\n]*-->\n).*?(<!-- {marker}:end -->)", re.S)
        rendered = make()
        text = pattern.sub(lambda m, r=rendered: m.group(1) + r + "\n" + m.group(2), text)
    return text


def _add_section(text: str, marker: str) -> str:
    """A plug-in new since the README was written (`make new-model`) gets its table
    after the last one of its kind."""
    kind, _, plugin = marker.partition("-")
    ends = list(re.finditer(rf"<!-- {kind}(-\w+)?:end -->", text))
    if not plugin or not ends:
        raise SystemExit(f"{PAGES[kind]} has no {kind} table to put {marker} after")
    at = ends[-1].end()
    block = (
        f"\n\nThe `{plugin}` plug-in's (`model={plugin}`):\n\n"
        f"<!-- {marker}:start (generated; tests/unit/test_readme.py checks it) -->\n"
        f"<!-- {marker}:end -->"
    )
    return text[:at] + block + text[at:]


def main() -> None:
    for kind, page in PAGES.items():
        path = ROOT / page
        path.write_text(render(path.read_text(), kind))


if __name__ == "__main__":
    main()

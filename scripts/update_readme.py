#!/usr/bin/env python3
"""Regenerate the README's hyperparameter and serving tables from the config dataclasses:
the platform's, and each shipped plug-in's (markers `hyperparameters-NAME`, `serving-NAME`).

    python scripts/update_readme.py          (make readme)

tests/unit/test_readme.py fails when the README and the dataclasses disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "model"))

from sagemaker_platform import registry  # noqa: E402
from sagemaker_platform.config import ServeConfig, TrainSettings, describe  # noqa: E402


def sections() -> dict[str, tuple[type, str]]:
    out = {
        "hyperparameters": (TrainSettings, "hyperparameter"),
        "serving": (ServeConfig, "variable"),
    }
    for name in registry.available():
        plugin = registry.load(name)
        out[f"hyperparameters-{name}"] = (plugin.Hyperparameters, "hyperparameter")
        if plugin.ServeSettings is not None:
            out[f"serving-{name}"] = (plugin.ServeSettings, "variable")
    return out


def table(cls, first: str) -> str:
    lines = [f"| {first} | default | meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | {f'`{default}`' if default else '(empty)'} | {meaning} |"
        for name, default, meaning in describe(cls)
    ]
    return "\n".join(lines)


def render(text: str) -> str:
    for marker, (cls, first) in sections().items():
        if f"<!-- {marker}:start" not in text:
            text = _add_section(text, marker)
        pattern = re.compile(rf"(<!-- {marker}:start[^\n]*-->\n).*?(<!-- {marker}:end -->)", re.S)
        text = pattern.sub(
            lambda m, c=cls, f=first: m.group(1) + table(c, f) + "\n" + m.group(2), text
        )
    return text


def _add_section(text: str, marker: str) -> str:
    """A plug-in new since the README was written (`make new-model`) gets its table
    after the last one of its kind."""
    kind, _, plugin = marker.partition("-")
    ends = list(re.finditer(rf"<!-- {kind}(-\w+)?:end -->", text))
    if not plugin or not ends:
        raise SystemExit(f"README.md has no {kind} table to put {marker} after")
    at = ends[-1].end()
    block = (
        f"\n\nThe `{plugin}` plug-in's (`model={plugin}`):\n\n"
        f"<!-- {marker}:start (generated; tests/unit/test_readme.py checks it) -->\n"
        f"<!-- {marker}:end -->"
    )
    return text[:at] + block + text[at:]


def main() -> None:
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))


if __name__ == "__main__":
    main()

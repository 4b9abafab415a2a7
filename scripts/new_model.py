#!/usr/bin/env python3
"""Write a working plug-in skeleton to fill in: `make new-model NAME=my_model`.

    python scripts/new_model.py NAME [--dest DIR]

DIR defaults to model/plugins/, where training finds it as `model=NAME`; a plug-in kept
elsewhere needs DIR on PYTHONPATH. The skeleton (scripts/skeleton/) trains and serves
as it is, on its own sample data, before you change a line.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKELETON = Path(__file__).resolve().parent / "skeleton"
PLUGINS = ROOT / "model" / "plugins"
MARKER = "SAGEMAKER_PLUGIN"  # registry.MARKER (the platform is not imported here)


def write(name: str, dest: Path = PLUGINS) -> Path:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise SystemExit(f"new-model: NAME={name!r} must be a lower-case Python identifier")
    target = dest / name
    if target.exists():
        raise SystemExit(f"new-model: {target} exists already")
    target.mkdir(parents=True)
    outside = dest.resolve() != PLUGINS
    for source in sorted(SKELETON.glob("*.py")):
        text = source.read_text().replace("skeleton", name).replace("Skeleton", _camel(name))
        if outside:  # its docstring's commands then need the folder on PYTHONPATH
            text = text.replace(
                f"`make new-model NAME={name}`",
                f"`scripts/new_model.py {name} --dest {dest.resolve()}`",
            ).replace(f"MODEL={name}\n", f"MODEL={name} PYTHONPATH={dest.resolve()}\n")
        (target / source.name).write_text(text)
    # The marker that lets the platform import the folder as a plug-in (registry.py).
    (target / MARKER).write_text((SKELETON / MARKER).read_text())
    return target


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the plug-in's name: a lower-case Python identifier")
    parser.add_argument(
        "--dest",
        type=Path,
        default=PLUGINS,
        help="where to write it (default model/plugins/, which the image copies); a plug-in "
        "elsewhere needs that folder on PYTHONPATH",
    )
    args = parser.parse_args()
    target = write(args.name, args.dest)
    print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}/")
    path = "" if args.dest.resolve() == PLUGINS else f"PYTHONPATH={args.dest.resolve()} "
    print(
        f"try it: {path}TEST_DIR=/tmp/{args.name} MODEL={args.name} "
        "local_test/train_local.sh --local",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

"""Finding plug-ins by name: the platform imports none of them by name in its code.

A plug-in name is a folder of `model/plugins/` (`text_classifier`, `tabular`) or, for a
model kept elsewhere, any importable package (on PYTHONPATH) whose `__init__.py` defines
`plugin`. Training picks one with the `model` hyperparameter and writes it into the model
directory's plugin.json, which is how serving finds it again.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

from . import artifacts, logs
from .errors import UserError
from .plugin import Plugin

PLUGINS_PACKAGE = "plugins"
PLUGINS_DIR = Path(__file__).resolve().parents[1] / PLUGINS_PACKAGE
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def available() -> list[str]:
    """The plug-ins shipped in model/plugins/."""
    return sorted(
        p.name
        for p in PLUGINS_DIR.iterdir()
        if (p / "__init__.py").is_file() and not p.name.startswith("_")
    )


def module_name(name: str) -> str:
    """The module that holds plug-in `name`: `plugins.NAME` when model/plugins/ has it,
    else `name` itself."""
    if not _NAME.match(name):
        raise UserError(f"model={name!r} is not a plug-in name: expected a Python module name")
    if "." not in name and (PLUGINS_DIR / name / "__init__.py").is_file():
        return f"{PLUGINS_PACKAGE}.{name}"
    return name


def load(name: str) -> Plugin:
    """The `plugin` object of plug-in `name`, checked to be a `Plugin`."""
    module = module_name(name)
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    if found is None:
        raise UserError(
            f"model={name!r}: no such plug-in; shipped: {', '.join(available())} "
            "(or put your package on PYTHONPATH)"
        )
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"plug-in {module!r} cannot be imported: {exc}") from exc
    plugin = getattr(imported, "plugin", None)
    if not isinstance(plugin, Plugin):
        raise UserError(
            f"plug-in {module!r} must define `plugin = MyPlugin()`, an instance of "
            "sagemaker_platform.plugin.Plugin"
        )
    logs.trust(module)  # its log templates are code, like the platform's
    return plugin


def plugin_for(model_dir: Path) -> Plugin:
    """The plug-in that wrote `model_dir`, named by its plugin.json."""
    return load(artifacts.read_manifest(model_dir)["module"])

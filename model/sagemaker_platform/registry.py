"""Finding plug-ins by name, and importing nothing else: the platform imports none of them
by name in its code.

A plug-in is a package folder (with `__init__.py`) that holds a marker file named
`SAGEMAKER_PLUGIN`, and whose `__init__.py` defines `plugin`. A name is a folder of
`model/plugins/` (`text_classifier`, `tabular`) or, for a model kept elsewhere, a
package on PYTHONPATH (`my_models.churn`). Training picks one with the `model`
hyperparameter and writes it into the model directory's plugin.json, which is how serving
finds it again.

Both names are hostile (a hyperparameter; a file in the model directory), and importing a
module runs it: `antigravity` opens a browser, `unittest.__main__` runs a test program that
exits 0. So a name is first resolved to a folder WITHOUT importing anything, not even its
parent packages (`importlib.util.find_spec("a.b")` would import `a`): the top-level name
through the import system's finders, which import nothing, then each part as a folder of
its parent's search path. Only a regular package folder that holds the marker is imported.
The marker is read through a symbolic link: whoever can put a link on the import path can
put code there, so a linked folder is as trusted as a real one.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import keyword
import re
import sys
from pathlib import Path

from . import artifacts, logs
from .errors import UserError
from .plugin import Plugin

MARKER = "SAGEMAKER_PLUGIN"  # the file in a package folder that makes it a plug-in
PLUGINS_PACKAGE = "plugins"
PLUGINS_DIR = Path(__file__).resolve().parents[1] / PLUGINS_PACKAGE
MAX_NAME_LENGTH = 100  # a plug-in name is a dotted path of Python identifiers
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEEDS = (
    f"a plug-in is a package folder with an __init__.py and a {MARKER} marker file beside "
    "it, on the Python path (model/plugins/ or PYTHONPATH)"
)


def available() -> list[str]:
    """The plug-ins shipped in model/plugins/: its folders that hold the marker."""
    return sorted(
        p.name
        for p in PLUGINS_DIR.iterdir()
        if _PART.fullmatch(p.name)
        and not p.name.startswith("_")
        and (p / "__init__.py").is_file()
        and (p / MARKER).is_file()
    )


def check_name(name: str, label: str = "model") -> None:
    """A dotted path of Python identifiers, at most MAX_NAME_LENGTH characters."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        shown = repr(name[:40]) + "..." if isinstance(name, str) else repr(name)
        size = f"{len(name)} characters long" if isinstance(name, str) else "not text"
        raise UserError(
            f"{label}={shown} is not a plug-in name: it is {size}; a plug-in name is a "
            f"Python package path (my_model, team.my_model) of at most {MAX_NAME_LENGTH}"
        )
    parts = name.split(".")
    if not all(_PART.fullmatch(p) and not keyword.iskeyword(p) for p in parts):
        raise UserError(
            f"{label}={name!r} is not a plug-in name: expected a Python package path "
            "(my_model, team.my_model: identifiers joined by dots)"
        )


def module_name(name: str) -> str:
    """The module that holds plug-in `name`: `plugins.NAME` when model/plugins/ has it,
    else `name` itself."""
    check_name(name)
    if "." not in name and (PLUGINS_DIR / name / "__init__.py").is_file():
        return f"{PLUGINS_PACKAGE}.{name}"
    return name


def load(name: str) -> Plugin:
    """The `plugin` object of plug-in `name` (the `model` hyperparameter), checked to be
    a `Plugin`."""
    return _import(module_name(name), name, "model")


def plugin_for(model_dir: Path) -> Plugin:
    """The plug-in that wrote `model_dir`, named by its plugin.json."""
    module = artifacts.read_manifest(model_dir)["module"]
    label = f"{artifacts.MANIFEST}'s module"
    check_name(module, label)
    return _import(module, module, label)


def check_model_dir(model_dir: Path) -> Plugin:
    """Fail before anything loads if the model cannot possibly load: plugin.json names
    an importable plug-in, model.ckpt is a torch checkpoint, and the plug-in's own
    `check` passes (`serve` at start, a multi-model endpoint at each load). The plug-in."""
    plugin = plugin_for(model_dir)
    artifacts.check_weights(model_dir)
    plugin.check(model_dir)
    return plugin


def _import(module: str, name: str, label: str) -> Plugin:
    """Import `module` once it is known to be a marked plug-in folder; `name` and
    `label` say where it was named, for the reason."""
    init = _plugin_init(module, name, label)
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"plug-in {module!r} cannot be imported: {exc}") from exc
    origin = getattr(imported, "__file__", None)
    if origin is None or Path(origin).resolve() != init.resolve():
        # A finder or a parent package's __path__ chose another file than the one checked.
        raise UserError(
            f"{label}={name!r}: importing {module!r} gave {origin}, not the checked {init}"
        )
    plugin = getattr(imported, "plugin", None)
    if not isinstance(plugin, Plugin):
        raise UserError(
            f"plug-in {module!r} must define `plugin = MyPlugin()`, an instance of "
            "sagemaker_platform.plugin.Plugin"
        )
    logs.trust(module)  # its log templates are code, like the platform's
    return plugin


def _plugin_init(module: str, name: str, label: str) -> Path:
    """The `__init__.py` of the plug-in folder `module` names, found without importing
    anything; a UserError naming what it is when it is not a plug-in."""
    parts = module.split(".")
    spec = _find(parts[0], None)
    for i in range(1, len(parts)):
        if spec is None:
            break
        if spec.submodule_search_locations is None:
            return _refuse(name, label, f"{'.'.join(parts[:i])!r} is {_kind(spec)}")
        spec = _find(".".join(parts[: i + 1]), _search_path(spec))
    if spec is None:
        raise UserError(
            f"{label}={name!r}: no such plug-in; shipped: {', '.join(available())} "
            "(or put your package on PYTHONPATH)"
        )
    origin = spec.origin if spec.has_location else None
    if (
        spec.submodule_search_locations is None
        or not isinstance(spec.loader, importlib.machinery.SourceFileLoader)
        or origin is None
        or Path(origin).name != "__init__.py"
    ):
        return _refuse(name, label, f"{module!r} is {_kind(spec)}")
    folder = Path(origin).parent
    if not (folder / MARKER).is_file():
        return _refuse(name, label, f"its folder {folder} has no {MARKER} marker file")
    return Path(origin)


def _find(fullname: str, path: list[str] | None) -> importlib.machinery.ModuleSpec | None:
    """The spec the import system would use, computed without importing: a top-level name
    through sys.meta_path (built-in, frozen, then sys.path), a submodule as a file or
    folder of its parent's search path."""
    try:
        if path is None:
            return importlib.util.find_spec(fullname)  # imports nothing for a top-level name
        return importlib.machinery.PathFinder.find_spec(fullname, path)
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        return None


def _search_path(spec: importlib.machinery.ModuleSpec) -> list[str]:
    """Where the import system looks for a package's submodules: its __path__ if it has
    been imported already, else the folders its spec names."""
    loaded = sys.modules.get(spec.name)
    if loaded is not None and getattr(loaded, "__path__", None) is not None:
        return list(loaded.__path__)
    return list(spec.submodule_search_locations or [])


def _kind(spec: importlib.machinery.ModuleSpec) -> str:
    if spec.origin == "built-in":
        return "a built-in module"
    if spec.origin == "frozen":
        return "a frozen module"
    if spec.submodule_search_locations is not None and not spec.has_location:
        return "a namespace package (no __init__.py)"
    if spec.submodule_search_locations is None:
        return "a single-file module"
    return f"a package loaded from {spec.origin}"


def _refuse(name: str, label: str, why: str) -> Path:
    raise UserError(f"{label}={name!r} is not a plug-in: {why}; {_NEEDS}")

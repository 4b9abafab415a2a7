"""Only plug-ins are imported: a name resolves to a package folder without importing
anything, and the folder must hold the SAGEMAKER_PLUGIN marker before its code runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sagemaker_platform import registry
from sagemaker_platform.errors import UserError
from tests import helpers

# A package that leaves a file behind when it is imported: the proof that its code ran.
PLANTED = "from pathlib import Path\nPath({witness!r}).write_text('imported')\n"
PLUGIN = (
    "from sagemaker_platform.plugin import Plugin\n"
    "class Marked(Plugin):\n"
    "    name = {name!r}\n"
    "plugin = Marked()\n"
)


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    """A folder on sys.path; every module imported from it is forgotten afterwards."""
    root = tmp_path / "on_path"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", None) and str(root) in str(
            sys.modules[name].__file__
        ):
            del sys.modules[name]


def package(root: Path, dotted: str, init: str = "", marker: bool = False) -> Path:
    folder = root.joinpath(*dotted.split("."))
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(init)
    if marker:
        (folder / registry.MARKER).write_text("# a SageMaker platform plug-in\n")
    return folder


def test_a_package_without_the_marker_is_refused_before_its_code_runs(on_path, tmp_path):
    witness = tmp_path / "witness"
    package(on_path, "planted_pkg", PLANTED.format(witness=str(witness)))
    with pytest.raises(UserError) as caught:
        registry.load("planted_pkg")
    message = str(caught.value)
    assert message.startswith("model='planted_pkg' is not a plug-in:")
    assert registry.MARKER in message
    assert not witness.exists()
    assert "planted_pkg" not in sys.modules


def test_the_parent_of_a_dotted_name_is_not_imported_either(on_path, tmp_path):
    witness = tmp_path / "witness"
    package(on_path, "outer_pkg", PLANTED.format(witness=str(witness)))
    package(on_path, "outer_pkg.inner")
    with pytest.raises(UserError, match="outer_pkg.inner.*SAGEMAKER_PLUGIN"):
        registry.load("outer_pkg.inner")
    assert not witness.exists()
    assert "outer_pkg" not in sys.modules


def test_a_package_with_the_marker_is_loaded(on_path):
    package(on_path, "marked_pkg", PLUGIN.format(name="marked"), marker=True)
    assert registry.load("marked_pkg").name == "marked"


def test_a_marked_package_inside_another_is_loaded(on_path):
    package(on_path, "team_models")
    package(on_path, "team_models.churn", PLUGIN.format(name="churn"), marker=True)
    assert registry.load("team_models.churn").name == "churn"


def test_a_marked_package_that_is_no_plugin_is_refused_naming_what_it_needs(on_path):
    package(on_path, "marked_empty", "x = 1\n", marker=True)
    with pytest.raises(UserError, match="must define `plugin = MyPlugin"):
        registry.load("marked_empty")


@pytest.mark.parametrize(
    "layout,what",
    [
        ("module", "a single-file module"),
        ("namespace", "a namespace package"),
    ],
)
def test_a_module_file_or_namespace_package_is_refused_unrun(on_path, tmp_path, layout, what):
    witness = tmp_path / "witness"
    if layout == "module":
        (on_path / "single_mod.py").write_text(PLANTED.format(witness=str(witness)))
        name = "single_mod"
    else:
        (on_path / "names_only").mkdir()
        (on_path / "names_only" / registry.MARKER).write_text("#\n")
        name = "names_only"
    with pytest.raises(UserError, match=f"is not a plug-in: .*{what}"):
        registry.load(name)
    assert not witness.exists() and name not in sys.modules


@pytest.mark.parametrize(
    "name,what",
    [
        ("os.path", "a (frozen|single-file) module"),
        ("json", "has no SAGEMAKER_PLUGIN marker"),
        ("sys", "a built-in module"),
        ("plugins", "has no SAGEMAKER_PLUGIN marker"),
        ("sagemaker_platform", "has no SAGEMAKER_PLUGIN marker"),
    ],
)
def test_library_modules_are_not_plugins(name, what):
    with pytest.raises(UserError, match=what):
        registry.load(name)


@pytest.mark.parametrize(
    "name",
    ["x" * 300, "a" * 101, "a..b", "1abc", "a b", "a.", ".a", "a/b", "class", "a.def.b", ""],
)
def test_a_name_that_is_no_python_package_path_is_refused_before_any_lookup(name):
    with pytest.raises(UserError, match="is not a plug-in name"):
        registry.load(name)
    with pytest.raises(UserError, match="is not a plug-in name"):
        registry.module_name(name)


def test_a_long_name_is_cut_in_the_reason():
    with pytest.raises(UserError) as caught:
        registry.load("x" * 300)
    assert len(str(caught.value)) < 300 and "300 characters" in str(caught.value)


def test_a_name_that_is_nowhere_lists_the_shipped_plugins():
    with pytest.raises(UserError, match="model='no_such_thing_here': no such plug-in; shipped: "):
        registry.load("no_such_thing_here")


def test_the_shipped_plugins_carry_the_marker_and_are_listed():
    shipped = registry.available()
    assert {"tabular", "text_classifier"} <= set(shipped)
    for name in shipped:
        assert (registry.PLUGINS_DIR / name / registry.MARKER).is_file()
        assert registry.module_name(name) == f"plugins.{name}"


def test_available_lists_only_marked_folders(tmp_path, monkeypatch):
    package(tmp_path, "marked", marker=True)
    package(tmp_path, "unmarked")
    package(tmp_path, "_private", marker=True)
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / registry.MARKER).write_text("#\n")  # no __init__.py
    monkeypatch.setattr(registry, "PLUGINS_DIR", tmp_path)
    assert registry.available() == ["marked"]


def test_the_new_model_skeleton_writes_the_marker(tmp_path, monkeypatch):
    sys.path.insert(0, str(helpers.ROOT))
    try:
        from scripts import new_model
    finally:
        sys.path.remove(str(helpers.ROOT))
    target = new_model.write("my_model", tmp_path)
    assert (target / registry.MARKER).is_file()
    assert (target / registry.MARKER).read_text().startswith("#")
    # kept outside model/plugins/: the commands in its docstring put it on PYTHONPATH
    doc = (target / "__init__.py").read_text()
    assert f"MODEL=my_model PYTHONPATH={tmp_path.resolve()}\n" in doc
    assert f"`scripts/new_model.py my_model --dest {tmp_path.resolve()}`" in doc
    assert "skeleton" not in doc.replace(str(tmp_path.resolve()), "").lower()
    plugins = tmp_path / "model" / "plugins"
    monkeypatch.setattr(new_model, "PLUGINS", plugins)  # as if model/plugins/
    doc = (new_model.write("my_model", plugins) / "__init__.py").read_text()
    assert "PYTHONPATH" not in doc and "`make new-model NAME=my_model`" in doc


def test_a_symlinked_plugin_folder_is_found_through_the_link(on_path, tmp_path):
    # Who can write a link on sys.path can write code there: the link is the image
    # builder's, like the folder it points to, and the marker is read through it.
    real = package(tmp_path / "elsewhere", "linked_real", PLUGIN.format(name="linked"), True)
    (on_path / "linked_pkg").symlink_to(real, target_is_directory=True)
    assert registry.load("linked_pkg").name == "linked"


# --- what `make mutate` found no test reading ---------------------------------------------
def manifest(tmp_path: Path, module: str) -> Path:
    from sagemaker_platform import artifacts

    artifacts.write_manifest(tmp_path / "model", "x", module)
    return tmp_path / "model"


def test_a_model_directory_names_the_plugin_that_loads_it(tmp_path):
    assert registry.plugin_for(manifest(tmp_path, "plugins.tabular")).name == "tabular"


@pytest.mark.parametrize(
    "module,message",
    [
        (
            "os; import x",
            "plugin.json's module='os; import x' is not a plug-in name: expected a Python "
            "package path (my_model, team.my_model: identifiers joined by dots)",
        ),
        ("json", "plugin.json's module='json' is not a plug-in: its folder "),
    ],
)
def test_a_model_directorys_plugin_name_is_checked_before_anything_is_imported(
    tmp_path, module, message
):
    """plugin.json comes with the model: it names a module, which must be a marked
    plug-in package, like a name from a hyperparameter."""
    with pytest.raises(UserError) as caught:
        registry.plugin_for(manifest(tmp_path, module))
    assert str(caught.value).startswith(message)

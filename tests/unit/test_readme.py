"""The docs' tables are generated from the config dataclasses: they cannot drift."""

from pathlib import Path

from scripts import update_readme

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "docs" / "training.md"
SERVING = ROOT / "docs" / "serving.md"


def test_the_tables_match_the_config_dataclasses():
    for kind, page in update_readme.PAGES.items():
        text = (ROOT / page).read_text()
        assert update_readme.render(text, kind) == text, "run `make readme` to regenerate them"
    assert "| `epochs` |" in TRAINING.read_text()
    assert "| `MODEL_SERVER_WORKERS` |" in SERVING.read_text()


def test_every_shipped_plugin_has_its_tables_in_the_docs():
    for kind, page in update_readme.PAGES.items():
        text = (ROOT / page).read_text()
        for marker in update_readme.sections(kind):
            assert f"<!-- {marker}:start" in text, f"{page} lacks the {marker} table"
    assert "| `text_column` |" in TRAINING.read_text()
    assert "| `hidden_sizes` |" in TRAINING.read_text()
    assert "| `MODEL_SERVER_BACKBONE` |" in SERVING.read_text()


def test_make_readme_adds_the_table_of_a_plugin_new_since_the_docs():
    text = TRAINING.read_text()
    start = text.index("<!-- hyperparameters-tabular:start")
    end = text.index("<!-- hyperparameters-tabular:end -->") + len(
        "<!-- hyperparameters-tabular:end -->"
    )
    without = text[:start] + text[end:]
    rendered = update_readme.render(without, "hyperparameters")
    assert "<!-- hyperparameters-tabular:start" in rendered
    assert "| `hidden_sizes` |" in rendered and "model=tabular" in rendered
    assert update_readme.render(rendered, "hyperparameters") == rendered  # stable once added


def test_every_platform_name_a_shipped_plugin_uses_is_a_documented_helper():
    """A plug-in author copies the shipped ones: whatever they import from the platform
    must be in the guide's helpers table (`update_readme.HELPERS`), with a docstring."""
    import ast

    used: set[tuple[str, str]] = set()
    for path in (ROOT / "model" / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text())
        aliases = {}  # `from sagemaker_platform import codecs` -> codecs
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "sagemaker_platform"
            ):
                if node.module == "sagemaker_platform":
                    aliases.update({a.asname or a.name: a.name for a in node.names})
                else:
                    used |= {(node.module.split(".")[1], a.name) for a in node.names}
        for node in ast.walk(tree):
            name = node.value if isinstance(node, ast.Attribute) else None
            if isinstance(name, ast.Name) and name.id in aliases:
                used.add((aliases[name.id], node.attr))
    missing = sorted(f"{m}.{n}" for m, n in used if n not in update_readme.HELPERS.get(m, ()))
    assert not missing, f"add to scripts/update_readme.py HELPERS: {missing}"
    guide = (ROOT / "docs" / "bring-your-own-model.md").read_text()
    assert "(no docstring)" not in guide

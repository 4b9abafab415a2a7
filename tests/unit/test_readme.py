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

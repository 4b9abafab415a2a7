"""The README's tables are generated from the config dataclasses: they cannot drift."""

from pathlib import Path

from scripts import update_readme

ROOT = Path(__file__).resolve().parents[2]


def test_readme_tables_match_the_config_dataclasses():
    text = (ROOT / "README.md").read_text()
    assert update_readme.render(text) == text, "run `make readme` to regenerate the tables"
    assert "| `epochs` |" in text and "| `MODEL_SERVER_WORKERS` |" in text


def test_every_shipped_plugin_has_its_tables_in_the_readme():
    text = (ROOT / "README.md").read_text()
    for marker in update_readme.sections():
        assert f"<!-- {marker}:start" in text, f"README lacks the {marker} table"
    assert "| `text_column` |" in text and "| `hidden_sizes` |" in text
    assert "| `MODEL_SERVER_BACKBONE` |" in text


def test_make_readme_adds_the_table_of_a_plugin_new_since_the_readme():
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- hyperparameters-tabular:start")
    end = text.index("<!-- hyperparameters-tabular:end -->") + len(
        "<!-- hyperparameters-tabular:end -->"
    )
    without = text[:start] + text[end:]
    rendered = update_readme.render(without)
    assert "<!-- hyperparameters-tabular:start" in rendered
    assert "| `hidden_sizes` |" in rendered and "model=tabular" in rendered
    assert update_readme.render(rendered) == rendered  # stable once added

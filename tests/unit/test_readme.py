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

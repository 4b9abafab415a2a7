"""The fortunes parser and the stratified split of benchmarks/real_data.py (no package needed)."""

import csv
import json
from pathlib import Path

import pytest

from benchmarks import real_data

FAKE = """A short one.
%
A longer one,
	with an indented second line.
		-- Someone
%

%
B\bBo\bol\bld and _\bu_\bn_\bd_\be_\br_\bl_\bi_\bn_\be_\bd.
%
"""


def test_parse_splits_on_percent_lines_and_strips_overstrike():
    assert real_data.parse_fortunes(FAKE) == [
        "A short one.",
        "A longer one,\n\twith an indented second line.\n\t\t-- Someone",
        "Bold and underlined.",
    ]


def test_parse_keeps_percent_inside_text_and_handles_crlf():
    raw = "100% sure\r\n%\r\nsecond\r\n"
    assert real_data.parse_fortunes(raw) == ["100% sure", "second"]


def _fake_package(root: Path, sizes: dict[str, int]) -> Path:
    root.mkdir()
    for name, n in sizes.items():
        (root / name).write_text("\n%\n".join(f"{name} entry {i}" for i in range(n)) + "\n%\n")
    return root


def test_texts_in_two_categories_are_dropped_duplicates_kept_once(tmp_path):
    root = tmp_path / "fortunes"
    root.mkdir()
    (root / "a").write_text("same\n%\nonly a\n%\nonly a\n")
    (root / "b").write_text("same\n%\nonly b\n")
    assert real_data.load_categories(["a", "b"], root) == {"a": ["only a"], "b": ["only b"]}


def test_missing_package_names_the_apt_command(tmp_path):
    with pytest.raises(real_data.MissingPackage, match="apt-get install -y .*fortunes"):
        real_data.load_categories(["computers"], tmp_path / "absent")
    root = _fake_package(tmp_path / "fortunes", {"a": 3})
    with pytest.raises(real_data.MissingPackage, match="no fortune category 'zz'.*found: a"):
        real_data.load_categories(["zz"], root)


def test_allocate_is_proportional_with_two_per_class_at_least():
    counts = real_data.allocate({"big": 900, "mid": 90, "tiny": 10}, 100)
    assert counts == {"big": 90, "mid": 9, "tiny": 2}
    assert sum(real_data.allocate({"a": 7, "b": 5, "c": 3}, 10).values()) == 10


def test_build_writes_disjoint_stratified_reproducible_splits(tmp_path):
    root = _fake_package(tmp_path / "fortunes", {"big": 120, "mid": 60, "small": 20})
    kw = dict(train=50, validation=20, test=40, categories=["big", "mid", "small"], root=root)
    summary = real_data.build(tmp_path / "one", seed=3, **kw)
    real_data.build(tmp_path / "two", seed=3, **kw)

    def rows(base, rel):
        with (base / rel).open() as f:
            return list(csv.DictReader(f))

    paths = {
        "train": "input/data/train/train.csv",
        "validation": "input/data/validation/validation.csv",
        "test": "heldout/test.csv",
    }
    splits = {s: rows(tmp_path / "one", p) for s, p in paths.items()}
    assert summary["rows"] == {"train": 50, "validation": 20, "test": 40}
    assert summary["class_counts"]["train"] == {"big": 30, "mid": 15, "small": 5}
    texts = [r["text"] for s in splits.values() for r in s]
    assert len(texts) == len(set(texts)), "splits overlap"
    assert all(r["text"].startswith(r["label"]) for s in splits.values() for r in s)
    for s, p in paths.items():
        assert rows(tmp_path / "two", p) == splits[s], "same seed, different split"
    assert json.loads((tmp_path / "one" / "input/config/hyperparameters.json").read_text()) == {}
    channels = json.loads((tmp_path / "one" / "input/config/inputdataconfig.json").read_text())
    assert set(channels) == {"train", "validation"}
    other = real_data.build(tmp_path / "three", seed=4, **kw)
    assert other["class_counts"] == summary["class_counts"]
    assert rows(tmp_path / "three", paths["train"]) != splits["train"]


def test_too_few_entries_is_an_error(tmp_path):
    root = _fake_package(tmp_path / "fortunes", {"a": 40, "b": 3})
    with pytest.raises(ValueError, match="category 'b' has 3 entries"):
        real_data.build(
            tmp_path / "out", train=8, validation=4, test=4, categories=["a", "b"], root=root
        )

import json

import numpy as np
import pandas as pd
import pytest
from text_classifier.data import load_splits, read_channel, stratified_split
from text_classifier.errors import UserError


def frame(n=20, labels=("a", "b")):
    return pd.DataFrame(
        {
            "text": [f"text number {i}" for i in range(n)],
            "label": [labels[i % len(labels)] for i in range(n)],
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "csv.gz"])
def test_every_format_reads(tmp_path, fmt):
    ch = tmp_path / "train"
    ch.mkdir()
    df = frame()
    path = ch / f"part.{fmt}"
    if fmt.startswith("csv"):
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    out = read_channel(ch, "text", "label")
    assert out["text"].tolist() == df["text"].tolist()
    assert out["label"].tolist() == df["label"].tolist()


def test_many_files_are_concatenated_in_order(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    frame(4).to_csv(ch / "a.csv", index=False)
    frame(6).to_csv(ch / "b.csv", index=False)
    assert len(read_channel(ch, "text", "label")) == 10


def test_custom_columns(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    frame().rename(columns={"text": "body", "label": "y"}).to_csv(ch / "a.csv", index=False)
    assert len(read_channel(ch, "body", "y")) == 20


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda ch: None, "channel 'train' has no data files (it is empty)"),
        (lambda ch: (ch / "notes.txt").write_text("x"), "found only: notes.txt"),
        (
            lambda ch: frame().drop(columns=["label"]).to_csv(ch / "a.csv", index=False),
            "has no column 'label'",
        ),
        (lambda ch: (ch / "a.parquet").write_bytes(b"not parquet"), "cannot read train/a.parquet"),
        (lambda ch: (ch / "a.csv").write_text("text,label\n,a\nx,b\n"), "1 empty texts"),
        (lambda ch: (ch / "a.csv").write_text("text,label\nx,\ny,b\n"), "1 rows without a label"),
        (lambda ch: (ch / "a.csv").write_text("text,label\n"), "has files but no rows"),
    ],
)
def test_bad_channels_are_user_errors(tmp_path, setup, message):
    ch = tmp_path / "train"
    ch.mkdir()
    setup(ch)
    with pytest.raises(UserError) as err:
        read_channel(ch, "text", "label")
    assert message in str(err.value)


def test_integer_labels_stay_integers(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    frame(labels=(2, 0, 1)).to_csv(ch / "a.csv", index=False)
    splits = load_splits(ch, None, "text", "label", 0.2, 0)
    assert splits.names == [0, 1, 2]
    assert json.dumps(splits.names) == "[0, 1, 2]"


def test_single_class_is_rejected(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    frame(labels=("a",)).to_csv(ch / "a.csv", index=False)
    with pytest.raises(UserError, match="single class"):
        load_splits(ch, None, "text", "label", 0.2, 0)


def test_validation_labels_must_be_known(tmp_path):
    tr, va = tmp_path / "train", tmp_path / "validation"
    tr.mkdir()
    va.mkdir()
    frame().to_csv(tr / "a.csv", index=False)
    frame(labels=("a", "zzz")).to_csv(va / "a.csv", index=False)
    with pytest.raises(UserError, match="labels not in the training data: \\['zzz'\\]"):
        load_splits(tr, va, "text", "label", 0.2, 0)


def test_split_is_seeded_stratified_and_disjoint():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2)
    tr, va = stratified_split(labels, 0.2, seed=7)
    tr2, va2 = stratified_split(labels, 0.2, seed=7)
    assert (va == va2).all() and (tr == tr2).all()
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == len(labels)
    assert sorted(np.bincount(labels[va]).tolist()) == [1, 2, 10]

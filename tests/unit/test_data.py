import json

import numpy as np
import pandas as pd
import pytest

from plugins.text_classifier import data
from sagemaker_platform import channels
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import TrainingData
from sagemaker_platform.splitting import random_split, stratified_split


def read_channel(ch, text="text", label="label"):
    """The platform's reader, then the text plug-in's checks, as `train` runs them."""
    df = channels.read_channel(ch, (text, label))
    data.check_rows(df, text, label, ch.name)
    return df.rename(columns={text: "text", label: "label"})


def load_splits(train_dir, val_dir, text, label, fraction, seed):
    read = channels.read_channel
    td = TrainingData(
        train=read(train_dir, (text, label)),
        validation=read(val_dir, (text, label)) if val_dir else None,
        validation_fraction=fraction,
        seed=seed,
    )
    return data.load_splits(td, text, label)


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
    out = read_channel(ch)
    assert out["text"].tolist() == df["text"].tolist()
    assert out["label"].tolist() == df["label"].tolist()


@pytest.mark.parametrize("fmt", ["csv.gz", "tsv.gz", "jsonl.gz"])
def test_a_gzipped_table_that_expands_past_memory_fails_naming_it(tmp_path, monkeypatch, fmt):
    """A gzip bomb: 4 MB of one repeated row in a 10 KB file, against a machine of 1 MB
    (the reader's limit is this container's memory); the same file reads under a 8 MB one."""
    import gzip

    ch = tmp_path / "train"
    ch.mkdir()
    sep = "\t" if fmt.startswith("tsv") else ","
    if fmt.startswith("jsonl"):
        head, row = "", json.dumps({"text": "a b c", "label": "a"}) + "\n"
    else:
        head, row = f"text{sep}label\n", f"a b c{sep}a\n"
    body = (head + row * (4 * 1024**2 // len(row))).encode()
    (ch / f"part.{fmt}").write_bytes(gzip.compress(body))
    monkeypatch.setattr(channels, "memory_bytes", lambda: 1024**2)
    with pytest.raises(UserError) as err:
        channels.read_channel(ch, ("text", "label"))
    assert str(err.value) == (
        f"train/part.{fmt} expands past 1,048,576 bytes, this container's memory: a gzip "
        "bomb, or a table for a bigger instance"
    )
    monkeypatch.setattr(channels, "memory_bytes", lambda: 8 * 1024**2)
    assert len(channels.read_channel(ch, ("text", "label"))) == len(body.splitlines()) - bool(head)


def test_a_tables_channel_never_reads_through_a_link_out_of_it(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    outside = tmp_path / "secrets.csv"
    frame(4).to_csv(outside, index=False)
    (ch / "part.csv").symlink_to(outside)
    with pytest.raises(UserError) as err:
        channels.read_channel(ch, ("text", "label"))
    assert "train/part.csv is a symbolic link to a file outside the channel" in str(err.value)


def test_many_files_are_concatenated_in_order(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    frame(4).to_csv(ch / "a.csv", index=False)
    frame(6).to_csv(ch / "b.csv", index=False)
    assert len(read_channel(ch)) == 10


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
        read_channel(ch)
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


def test_other_columns_are_kept_and_each_row_names_its_file(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    frame(3).assign(source="mine").to_csv(ch / "a.csv", index=False)
    df = channels.read_channel(ch, ("text",))
    assert df["source"].tolist() == ["mine"] * 3  # a user's own column named source survives
    assert df[channels.SOURCE].tolist() == ["train/a.csv"] * 3


def test_random_split_is_seeded_and_disjoint():
    tr, va = random_split(50, 0.2, seed=3)
    assert len(va) == 10 and set(tr).isdisjoint(va) and len(tr) + len(va) == 50
    assert (random_split(50, 0.2, seed=3)[1] == va).all()
    assert len(random_split(5, 0.0, seed=3)[1]) == 0


def test_class_weights_are_inverse_frequency_and_one_when_balanced():
    from sagemaker_platform.splitting import class_weights

    assert class_weights(np.array([0, 1, 0, 1]), 2) == [1.0, 1.0]
    assert class_weights(np.array([0, 0, 0, 1]), 2) == [pytest.approx(0.666667), 2.0]
    assert class_weights(np.array([0, 0]), 3)[1:] == [pytest.approx(0.666667)] * 2  # unseen


# --- what `make mutate` found no test reading ---------------------------------------------
def test_hidden_files_and_folders_are_not_read(tmp_path):
    ch = tmp_path / "train"
    (ch / ".cache").mkdir(parents=True)
    frame(4).to_csv(ch / "a.csv", index=False)
    (ch / ".hidden.csv").write_text("not,a,table\n1\n")
    (ch / ".cache" / "b.csv").write_text("not,a,table\n1\n")
    assert channels.data_files(ch) == [ch / "a.csv"]


def test_the_files_rows_are_numbered_from_0_across_files(tmp_path):
    ch = tmp_path / "train"
    ch.mkdir()
    frame(2).to_csv(ch / "a.csv", index=False)
    frame(3).to_csv(ch / "b.csv", index=False)
    assert list(channels.read_channel(ch).index) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "files,message",
    [
        (
            {"notes.txt": "x"},
            "channel 'train' has no data files (found only: notes.txt); expected files "
            "ending in .csv, .tsv, .jsonl, .json, .parquet",
        ),
        (
            {"a.csv": "text,y\nx,1\n"},
            "train/a.csv has no column 'label' (columns: text, y); check the "
            "hyperparameters that name columns",
        ),
        (
            {"a.csv": "text,label\nx,a\ny,b,c,d\n"},
            "cannot read train/a.csv: Error tokenizing data. C error: Expected 2 fields in "
            "line 3, saw 4",
        ),
    ],
)
def test_a_channels_errors_read_in_full(tmp_path, files, message):
    ch = tmp_path / "train"
    ch.mkdir()
    for name, text in files.items():
        (ch / name).write_text(text)
    with pytest.raises(UserError) as err:
        channels.read_channel(ch, ["text", "label"])
    assert str(err.value) == message


def test_held_out_is_the_one_rule_for_validation_rows():
    from sagemaker_platform.splitting import held_out

    def data(validation=None, fraction=0.25):
        return TrainingData(
            train=frame(8), validation=validation, validation_fraction=fraction, seed=3
        )

    tr, va, how = held_out(data(validation=frame(2)), 8)
    assert (tr.tolist(), va, how) == (list(range(8)), None, "channel")
    tr, va, how = held_out(data(fraction=0), 8, np.array([0, 1] * 4))
    assert (tr.tolist(), va.tolist(), how) == (list(range(8)), [], "none")  # not 1 per class
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    tr, va, how = held_out(data(), 8, labels)
    assert how == "split_0.25" and sorted(labels[va].tolist()) == [0, 1]  # each class
    assert sorted([*tr, *va]) == list(range(8))
    assert held_out(data(), 8, labels)[1].tolist() == va.tolist()  # seeded
    tr, va, how = held_out(data(), 8)
    assert how == "split_0.25" and len(va) == 2 and sorted([*tr, *va]) == list(range(8))
    tr, va, how = held_out(data(), 1)  # one row: none can be held out
    assert (tr.tolist(), va.tolist(), how) == ([0], [], "none")

"""Channels of files (`Plugin.data = "files"`): listed one row per file, never opened,
hidden files skipped, links out of the channel refused."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sagemaker_platform import channels
from sagemaker_platform.errors import UserError

_opened: list[str] | None = None  # while recording: every path opened in this process


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_each_file_is_a_row_with_its_path_relative_path_size_and_source(tmp_path):
    channel = write(
        tmp_path / "train",
        {
            "dog/002.png": b"x" * 7,
            "cat/001.png": b"x" * 3,
            "cat/sub/003.jpg": b"",
            "top.npy": b"x" * 11,
            ".manifest": b"hidden",
            "cat/.DS_Store": b"hidden",
            ".cache/dog/9.png": b"hidden",
        },
    )
    frame = channels.list_files(channel)
    assert frame[channels.RELATIVE].tolist() == [
        "cat/001.png",
        "cat/sub/003.jpg",
        "dog/002.png",
        "top.npy",
    ]
    assert frame[channels.SIZE].tolist() == [3, 0, 7, 11]
    assert frame[channels.SOURCE].tolist() == [
        "train/cat/001.png",
        "train/cat/sub/003.jpg",
        "train/dog/002.png",
        "train/top.npy",
    ]
    for path, relative in zip(frame[channels.PATH], frame[channels.RELATIVE], strict=True):
        assert isinstance(path, str) and Path(path).is_absolute()
        assert Path(path) == channel.resolve() / relative


def test_listing_opens_no_file(tmp_path):
    """FastFile fetches an object's bytes when it is opened: listing must only stat."""
    global _opened
    channel = write(tmp_path / "train", {f"c{i % 2}/{i}.png": b"data" for i in range(20)})
    _opened = []
    try:
        frame = channels.list_files(channel)
    finally:
        opened, _opened = _opened, None
    assert len(frame) == 20
    assert not [p for p in opened if p.startswith(str(tmp_path))], opened


@pytest.mark.parametrize(
    "files",
    [{}, {".hidden": b"x", ".folder/a.png": b"x"}],
    ids=["empty", "only-hidden"],
)
def test_a_channel_with_no_file_is_a_user_error(tmp_path, files):
    channel = write(tmp_path / "train", files)
    channel.mkdir(exist_ok=True)
    with pytest.raises(channels.NoData, match=r"^channel 'train' has no files \(it is empty\)$"):
        channels.list_files(channel)


def test_a_link_to_a_file_inside_the_channel_is_listed_by_its_target(tmp_path):
    channel = write(tmp_path / "train", {"cat/001.png": b"abc"})
    (channel / "dog").mkdir()
    (channel / "dog" / "001.png").symlink_to(channel / "cat" / "001.png")
    frame = channels.list_files(channel)
    assert frame[channels.RELATIVE].tolist() == ["cat/001.png", "dog/001.png"]
    assert frame[channels.PATH].tolist() == [str(channel.resolve() / "cat" / "001.png")] * 2
    assert frame[channels.SIZE].tolist() == [3, 3]


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda ch, out: (ch / "cat" / "passwd.png").symlink_to(out / "secret"),
            "train/cat/passwd.png is a symbolic link to a file outside the channel",
        ),
        (
            lambda ch, out: (ch / "cat" / "up").symlink_to(out),
            "train/cat/up is a symbolic link to a folder outside the channel",
        ),
        (
            lambda ch, out: (ch / "loop").symlink_to(ch),
            "train/loop is a symbolic link to a folder inside the channel",
        ),
        (
            lambda ch, out: (ch / "cat" / "gone.png").symlink_to(ch / "nowhere.png"),
            "train/cat/gone.png is a symbolic link to nothing readable inside the channel",
        ),
        (
            lambda ch, out: os.mkfifo(ch / "cat" / "pipe.png"),
            "train/cat/pipe.png is not a regular file",
        ),
    ],
    ids=["file-outside", "folder-outside", "folder-inside", "dangling", "fifo"],
)
def test_what_is_not_a_file_of_the_channel_is_refused_naming_it(tmp_path, make, message):
    outside = write(tmp_path / "outside", {"secret": b"password"})
    channel = write(tmp_path / "train", {"cat/001.png": b"abc"})
    make(channel, outside)
    with pytest.raises(UserError) as raised:
        channels.list_files(channel)
    assert str(raised.value).startswith(message), str(raised.value)


def test_read_dispatches_on_the_plugins_kind(tmp_path):
    channel = write(tmp_path / "train", {"a.csv": b"x,y\n1,2\n", "b.png": b"png"})
    assert channels.read(channel, channels.TABLES, ("x",))["x"].tolist() == [1]
    assert channels.read(channel, channels.FILES)[channels.RELATIVE].tolist() == [
        "a.csv",
        "b.png",
    ]


# --- what `make mutate` found no test reading ---------------------------------------------
def test_a_folder_that_cannot_be_listed_fails_naming_it_rather_than_being_skipped(
    tmp_path, monkeypatch
):
    """Root reads any folder, so the refusal is made where os.walk lists one: a folder
    skipped without a word would be a channel silently missing its files."""
    channel = write(tmp_path / "train", {"ok/1.png": b"x", "locked/2.png": b"x"})
    scandir = os.scandir

    def refuse(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(UserError) as err:
        channels.list_files(channel)
    assert str(err.value) == "train/locked cannot be listed: Permission denied"


def test_files_are_sorted_by_their_place_in_the_channel_not_by_a_links_target(tmp_path):
    channel = write(tmp_path / "train", {"b.png": b"x", "z/real.png": b"x"})
    (channel / "a.png").symlink_to(channel / "z" / "real.png")
    listed = channels.list_files(channel)
    assert list(listed[channels.RELATIVE]) == ["a.png", "b.png", "z/real.png"]
    assert listed[channels.PATH][0] == str((channel / "z" / "real.png").resolve())


def test_a_link_out_of_the_channel_says_which_links_are_followed(tmp_path):
    channel = write(tmp_path / "train", {"a.png": b"x"})
    (channel / "out.png").symlink_to(write(tmp_path / "elsewhere", {"x.png": b"x"}) / "x.png")
    with pytest.raises(UserError) as err:
        channels.list_files(channel)
    assert str(err.value) == (
        "train/out.png is a symbolic link to a file outside the channel; "
        "only links to files inside the channel are followed"
    )

"""A channel's .tar.gz: bombs, too many files and cut-short streams are refused with a
reason naming the archive; links, special files and members that
would replace another are refused on every Python."""

from __future__ import annotations

import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sagemaker_platform import archives
from sagemaker_platform.errors import UserError
from tests.unit import chained_links

WHERE = "pretrained/model.tar.gz"


def tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_plain_model_archive_is_extracted_whole(tmp_path):
    files = {"model/config.json": b"{}", "model/weights.bin": bytes(range(256)) * 64}
    archives.extract(tarball(tmp_path / "m.tar.gz", files), tmp_path / "out", WHERE)
    assert (tmp_path / "out" / "model" / "weights.bin").read_bytes() == files["model/weights.bin"]


def test_a_bomb_is_refused_by_its_expansion_ratio(tmp_path, monkeypatch):
    # 8 MB of zeros packs into about 8 KB: far past MAX_RATIO times its size.
    monkeypatch.setattr(archives, "RATIO_FLOOR_BYTES", 1024**2)
    bomb = tarball(tmp_path / "m.tar.gz", {"zeros.bin": bytes(8 * 1024**2)})
    with pytest.raises(UserError, match=rf"^{WHERE} is refused: .*tar bomb"):
        archives.extract(bomb, tmp_path / "out", WHERE)
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_the_size_limit_names_its_setting(tmp_path):
    big = tarball(tmp_path / "m.tar.gz", {"a.bin": bytes(range(256)) * 8})
    with pytest.raises(UserError, match=r"expands past .* GB \(max_unpacked_gb\)"):
        archives.extract(big, tmp_path / "out", WHERE, archives.Limits(max_bytes=1000))


def test_the_file_count_limit_names_its_setting(tmp_path):
    many = tarball(tmp_path / "m.tar.gz", {f"f{i}.txt": b"x" for i in range(4)})
    with pytest.raises(UserError, match=r"more than 3 files \(max_unpacked_files\)"):
        archives.extract(many, tmp_path / "out", WHERE, archives.Limits(max_files=3))
    archives.extract(many, tmp_path / "ok", WHERE, archives.Limits(max_files=4))


@pytest.mark.parametrize("damage", ["truncated trailer", "bad crc"])
def test_a_damaged_gzip_trailer_is_refused(tmp_path, damage):
    path = tarball(tmp_path / "m.tar.gz", {"model/config.json": b'{"a": 1}'})
    data = bytearray(path.read_bytes())
    if damage == "truncated trailer":
        del data[-4:]  # the length field of the gzip trailer
    else:
        data[-8] ^= 0xFF  # the CRC32
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=rf"^cannot read {WHERE} as a gzipped tar archive"):
        archives.extract(path, tmp_path / "out", WHERE)


# --- links: refused outright, on every Python -------------------------------------------
def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x\n"):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    data = data if kind == tarfile.REGTYPE else b""
    info.size = len(data)
    return info, io.BytesIO(data)


def archive(path: Path, *members) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(*member("model/config.json", data=b"{}"))  # a harmless member first
        for info, data in members:
            data.seek(0)  # a parametrize case's member is made once: read it whole each run
            tar.addfile(info, data)
    return path


def files_outside(root: Path, dest: Path) -> list[Path]:
    """Every file or link under `root` that is not under `dest`, the archive itself aside."""
    return [
        p
        for p in root.rglob("*")
        if not p.is_relative_to(dest) and p.suffixes[-2:] != [".tar", ".gz"] and not p.is_dir()
    ]


@pytest.fixture
def victim(tmp_path) -> Path:
    """A folder beside the extraction folder, with a file in it, that no archive may touch."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "callbacks.py").write_text("original\n")
    return folder


def test_the_chained_symlink_archive_is_refused_at_its_first_link(tmp_path):
    tarball = chained_links.build(tmp_path / "m.tar.gz", levels_up=1)
    dest = tmp_path / "scratch" / "model"
    with pytest.raises(UserError) as caught:
        archives.extract(tarball, dest, WHERE)
    assert str(caught.value).startswith(f"{WHERE} is refused: member 'a' is a symbolic link")
    assert "links are not extracted" in str(caught.value)
    assert not [p for p in tmp_path.rglob("pwned")], "the planted file was written"
    assert files_outside(tmp_path, dest) == []
    assert not [p for p in dest.rglob("*") if p.is_symlink()]


LINKS = {
    "symlink inside": (member("model/link.json", tarfile.SYMTYPE, "config.json"), "symbolic"),
    "symlink to a file outside": (
        member("model/weights.bin", tarfile.SYMTYPE, "../../victim/callbacks.py"),
        "symbolic",
    ),
    "absolute symlink": (
        member("model/tokenizer.json", tarfile.SYMTYPE, "/etc/passwd"),
        "symbolic",
    ),
    "hard link inside": (member("model/copy.json", tarfile.LNKTYPE, "model/config.json"), "hard"),
    "hard link outside": (member("model/passwd", tarfile.LNKTYPE, "/etc/passwd"), "hard"),
}


@pytest.mark.parametrize("case", list(LINKS))
def test_a_link_member_is_refused_naming_the_member(case, tmp_path, victim):
    (info, data), kind = LINKS[case]
    dest = tmp_path / "scratch" / "model"
    with pytest.raises(UserError) as caught:
        archives.extract(archive(tmp_path / "m.tar.gz", (info, data)), dest, WHERE)
    assert str(caught.value).startswith(
        f"{WHERE} is refused: member {info.name!r} is a {kind} link (to {info.linkname!r})"
    ), caught.value
    assert not (dest / info.name).exists() and not (dest / info.name).is_symlink()
    assert (victim / "callbacks.py").read_text() == "original\n"
    assert files_outside(tmp_path, dest) == [victim / "callbacks.py"]


def test_a_member_written_through_an_extracted_symlink_folder_is_refused(tmp_path, victim):
    dest = tmp_path / "scratch" / "model"
    tarball = archive(
        tmp_path / "m.tar.gz",
        member("up", tarfile.SYMTYPE, "../../victim"),  # no '..' in any member's name
        member("up/callbacks.py", data=b"planted\n"),
        member("up/new.py", data=b"planted\n"),
    )
    with pytest.raises(UserError, match=rf"^{WHERE} is refused: member 'up' is a symbolic link"):
        archives.extract(tarball, dest, WHERE)
    assert (victim / "callbacks.py").read_text() == "original\n"
    assert sorted(p.name for p in victim.iterdir()) == ["callbacks.py"]


def test_no_member_is_written_through_a_link_even_one_already_in_the_folder(tmp_path, victim):
    """The second line of defence: each folder is entered with O_NOFOLLOW, each file made
    with O_EXCL, so a link in the way (which no member can make) stops the member."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "up").symlink_to(victim)
    (dest / "config.json").symlink_to(victim / "callbacks.py")
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with tarfile.open(archive(tmp_path / "m.tar.gz", member("up/new.py"))) as tar:
            for name, reason in {
                "up/new.py": "would be written under 'up', which is not a folder",
                "config.json": "would replace what an earlier member wrote",
            }.items():
                with pytest.raises(UserError, match=re.escape(f"member '{name}' {reason}")):
                    info = tarfile.TarInfo(name)
                    archives._write(tar, info, tuple(name.split("/")), root, WHERE)
    finally:
        os.close(root)
    assert sorted(p.name for p in victim.iterdir()) == ["callbacks.py"]
    assert (victim / "callbacks.py").read_text() == "original\n"


def test_a_destination_that_is_a_link_or_not_empty_is_not_used(tmp_path, victim):
    tarball = archive(tmp_path / "m.tar.gz")
    (tmp_path / "link").symlink_to(victim, target_is_directory=True)
    with pytest.raises(OSError):
        archives.extract(tarball, tmp_path / "link", WHERE)
    with pytest.raises(ValueError, match="is not empty"):
        archives.extract(tarball, victim, WHERE)
    assert sorted(p.name for p in victim.iterdir()) == ["callbacks.py"]


@pytest.mark.parametrize(
    "members,reason",
    [
        ([member("model"), member("model/x.json")], r"member 'model' would replace"),
        (
            [member("notes"), member("notes/x.json")],
            r"member 'notes/x\.json' would be written "
            r"under 'notes', which is not a folder",
        ),
        ([member("model/a.json"), member("model/a.json")], r"member 'model/a\.json' would replace"),
        ([member("fifo", tarfile.FIFOTYPE)], r"member 'fifo' is a fifo, a special file"),
        ([member("sda", tarfile.BLKTYPE)], r"member 'sda' is a block device, a special file"),
        ([member("label", b"V")], r"member 'label' is of tar type b'V', a special file"),
        ([member("./")], r"member '\./' is a file without a name"),
        ([member("..\\escape.txt")], r"member '\.\.\\\\escape\.txt' contains '\.\.'"),
        (
            [member("model/notes"), member("model/notes/x/y.json")],
            r"member 'model/notes/x/y\.json' would be written under 'model/notes', which is not",
        ),
    ],
    ids=[
        "file-over-folder",
        "folder-under-file",
        "twice",
        "fifo",
        "block-device",
        "unknown-type",
        "nameless-file",
        "backslash-parent",
        "file-deep-in-the-path",
    ],
)
def test_a_member_that_would_replace_or_is_special_is_refused(tmp_path, members, reason):
    with pytest.raises(UserError, match=rf"^{WHERE} is refused: {reason}"):
        archives.extract(archive(tmp_path / "m.tar.gz", *members), tmp_path / "out", WHERE)


def test_files_and_folders_get_plain_modes_not_the_archives(tmp_path):
    info, data = member("model/run.sh", data=b"#!/bin/sh\n")
    info.mode = 0o6777  # setuid, setgid, world-writable
    archives.extract(archive(tmp_path / "m.tar.gz", (info, data)), tmp_path / "out", WHERE)
    mode = (tmp_path / "out" / "model" / "run.sh").stat().st_mode & 0o7777
    assert mode & 0o6022 == 0 and mode & 0o111 == 0, oct(mode)


def _python(version: str) -> str | None:
    """An interpreter of `version` that runs: this one, pyenv's, or one on PATH."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv = sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))
    )
    for candidate in [*pyenv, shutil.which(f"python{version}")]:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


def _pythons() -> list:
    found = []
    for version in ("3.11", "3.12", "3.13"):
        path = _python(version)
        skip = pytest.mark.skip(reason=f"no python{version} on this machine (pyenv or PATH)")
        found.append(pytest.param(version, path, id=version, marks=[] if path else skip))
    return found


@pytest.mark.parametrize("version,python", _pythons())
def test_the_chained_symlink_archive_is_refused_on_every_python(version, python):
    """archives.py is standard library only: each interpreter extracts the attack with it.
    Python's own filter is bypassable on all three versions found here (3.11.7, 3.12.1,
    3.13.0); the refusal must not be Python's."""
    model = Path(__file__).resolve().parents[2] / "model"
    result = subprocess.run(
        [python, str(Path(chained_links.__file__))],
        env={**os.environ, "PYTHONPATH": str(model)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["python"].startswith(version + "."), report
    assert report["outside"] == [], report
    assert report["refused"].startswith(f"{WHERE} is refused: member 'a' is a symbolic link"), (
        report
    )


def test_a_link_is_refused_saying_how_to_archive_without_links(tmp_path):
    link = member("model/config.json", tarfile.SYMTYPE, "../x")
    with pytest.raises(UserError) as err:
        archives.extract(archive(tmp_path / "m.tar.gz", link), tmp_path / "out", WHERE)
    assert str(err.value).endswith(
        "links are not extracted, as no model archive needs one: archive the files "
        "themselves (tar --dereference)"
    )


def test_folders_are_made_0755_whatever_the_umask_lets_through(tmp_path):
    info, data = member("model/sub/", tarfile.DIRTYPE)
    info.mode = 0o777
    old = os.umask(0)
    try:
        archives.extract(archive(tmp_path / "m.tar.gz", (info, data)), tmp_path / "out", WHERE)
    finally:
        os.umask(old)
    for folder in (tmp_path / "out" / "model", tmp_path / "out" / "model" / "sub"):
        assert folder.stat().st_mode & 0o7777 == 0o755, oct(folder.stat().st_mode)


def test_the_size_limit_counts_every_member_and_allows_exactly_the_limit(tmp_path):
    """Three members each well under the limit, over it together: the sum is refused."""
    files = {f"model/part{i}.bin": bytes(range(256)) * 2 for i in range(3)}  # 512 bytes each
    archive_ = tarball(tmp_path / "m.tar.gz", files)
    with pytest.raises(UserError) as err:
        archives.extract(archive_, tmp_path / "out", WHERE, archives.Limits(max_bytes=1535))
    assert str(err.value) == (
        f"{WHERE} is refused: it expands past {1535 / 1024**3:g} GB (max_unpacked_gb)"
    )
    archives.extract(archive_, tmp_path / "ok", WHERE, archives.Limits(max_bytes=1536))


def test_an_archive_that_barely_compresses_may_expand_past_the_ratio_floor(tmp_path, monkeypatch):
    """The ratio budget is the archive's size times MAX_RATIO (at least the floor)."""
    monkeypatch.setattr(archives, "RATIO_FLOOR_BYTES", 1)
    weights = os.urandom(64 * 1024)  # random bytes: the archive is as big as they are
    archives.extract(tarball(tmp_path / "m.tar.gz", {"w.bin": weights}), tmp_path / "out", WHERE)
    assert (tmp_path / "out" / "w.bin").read_bytes() == weights


@pytest.mark.parametrize("name", ["d" * 300 + "/x.json", "model/" + "f" * 300])
def test_a_name_the_filesystem_cannot_take_is_refused_naming_it_cut_short(tmp_path, name):
    with pytest.raises(UserError) as err:
        archives.extract(archive(tmp_path / "m.tar.gz", member(name)), tmp_path / "out", WHERE)
    assert str(err.value) == (
        f"{WHERE} is refused: member {name[:120]!r}... ({len(name)} characters) cannot be "
        "written: File name too long"
    )

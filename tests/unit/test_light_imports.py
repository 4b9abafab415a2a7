"""What `serve`'s master and each worker import before the model loads stays light: a
plug-in package, the platform's serving modules and the model directory's manifest pull
in no torch, Lightning, transformers or pandas (each is cold start: pandas alone added
about 0.9 s to /ping 200 when a plug-in imported it at the top). numpy may come: every
worker imports it with torch a moment later."""

import subprocess
import sys

import pytest

from tests.conftest import MODEL_DIR, PLUGINS

HEAVY = ("torch", "lightning", "transformers", "pandas", "sklearn", "scipy")


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_plugin_and_the_serving_modules_import_nothing_heavy(plugin):
    code = (
        "import sys\n"
        "from sagemaker_platform import registry, serving, service, hyperparameters\n"
        f"registry.load({plugin!r})\n"
        f"heavy = {{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})\n"
        "assert not heavy, sorted(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=str(MODEL_DIR), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]

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


def test_training_and_its_tracking_module_import_no_mlflow():
    """MLflow is imported only when MLFLOW_TRACKING_URI is set, once training starts;
    tests/integration/test_mlflow.py follows a whole job without the variable."""
    code = (
        "import sys, os\n"
        "os.environ.pop('MLFLOW_TRACKING_URI', None)\n"
        "from sagemaker_platform import training, tracking, hyperparameters\n"
        "job = hyperparameters.parse({})\n"
        "assert tracking.from_env(job) is None\n"
        "assert tracking.from_env(job, {'MLFLOW_TRACKING_URI': 'http://x:5000'}).experiment "
        "== 'text_classifier'\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'mlflow', 'lightning', 'torch'}\n"
        "assert not heavy, sorted(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=str(MODEL_DIR), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]

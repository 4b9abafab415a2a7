#!/usr/bin/env bash
# Train on local_test/test_dir, an /opt/ml stand-in, exactly as a SageMaker training job would:
#   local_test/train_local.sh IMAGE     docker run IMAGE train, test_dir mounted at /opt/ml,
#                                       --gpus all when nvidia-smi finds a GPU; podman when
#                                       there is no docker on PATH, or with DOCKER=podman
#   local_test/train_local.sh --local   model/train with the project's .venv (or PYTHON, else
#                                       python3 from PATH), no Docker (LOCAL=1 does the same),
#                                       SAGEMAKER_BASE_DIR=test_dir
# The model is written back into test_dir/model, evaluation results into test_dir/output.
# TEST_DIR=DIR uses another tree; when it holds no job yet, the sample job is written first.
set -euo pipefail

usage_text() {
    echo "usage: $0 IMAGE      train in the image IMAGE (Docker, or podman)"
    echo "       $0 --local    train with the project's .venv, no container (or LOCAL=1)"
    echo "  env: TEST_DIR (default local_test/test_dir), DOCKER (docker or podman),"
    echo "       PYTHON (--local: default .venv/bin/python, else python3),"
    echo "       PYTHONPATH (--local: where a plug-in kept outside the repository lives)"
}

# shellcheck source=local_test/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
parse_image_or_local "$@"
ensure_sample_job

# Each run starts fresh, as a new training job does: what an earlier run left would be
# mistaken for this one's results.
rm -rf "$test_dir/model" "$test_dir/output" "$test_dir/checkpoints" 2>/dev/null ||
    die "cannot clear $test_dir/{model,output,checkpoints}: files written as root by a" \
        "container? remove them with: sudo rm -rf $test_dir/{model,output,checkpoints}"
mkdir -p "$test_dir/model" "$test_dir/output"

status=0
if [ "$mode" = docker ]; then
    detect_gpus
    echo "+ $docker run IMAGE train, $test_dir mounted at /opt/ml" >&2
    "$docker" run --rm ${gpu_flags[@]+"${gpu_flags[@]}"} -v "$test_dir:/opt/ml" "$image" train ||
        status=$?
else
    echo "+ model/train with $python, SAGEMAKER_BASE_DIR=$test_dir" >&2
    SAGEMAKER_BASE_DIR=$test_dir "$python" "$repo_dir/model/train" || status=$?
fi

if [ "$status" -ne 0 ]; then
    if [ -f "$test_dir/output/failure" ]; then
        echo "training failed: $(head -n 1 "$test_dir/output/failure")" >&2
    else
        echo "training failed (exit $status)" >&2
    fi
    exit "$status"
fi
echo "model written to $test_dir/model:" >&2
ls -l "$test_dir/model" >&2

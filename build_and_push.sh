#!/usr/bin/env bash
# Build the image for linux/amd64 and push it to Amazon ECR; the image URI is printed last,
# alone on stdout (everything else goes to stderr), so `uri=$(./build_and_push.sh NAME)` works.
#
#   ./build_and_push.sh IMAGE_NAME [TAG]            (TAG defaults to latest)
#   ./build_and_push.sh --cpu IMAGE_NAME [TAG]      the CPU image, tagged TAG-cpu (latest-cpu)
#
# The CPU image (serverless endpoints, CPU instances) is the same Dockerfile on a small Python
# base without CUDA (BASE_IMAGE, default python:3.12-slim), where the Dockerfile installs torch's
# CPU wheel from TORCH_INDEX_URL (default: the PyTorch CPU index).
# Region: AWS_REGION, else AWS_DEFAULT_REGION, else `aws configure get region`.
# Account: the caller's (aws sts get-caller-identity). The ECR repository IMAGE_NAME is created
# when missing. BASE_IMAGE overrides the Dockerfile's base image; when the base lives in an ECR
# registry (AWS Deep Learning Containers: <account>.dkr.ecr.<region>.amazonaws.com/...), this
# script logs in to that registry too, so the build can pull it.
# DOCKER=podman builds and pushes with podman instead of docker (in Docker's image format,
# whose SHELL the Dockerfile relies on).
set -euo pipefail

# The CPU image's default base: Debian slim with CPython, no CUDA (see the Dockerfile).
CPU_BASE_IMAGE=python:3.12-slim

usage_text() {
    echo "usage: $0 [--cpu] IMAGE_NAME [TAG]"
    echo "  builds the image for linux/amd64, pushes it to ECR as"
    echo "  ACCOUNT.dkr.ecr.REGION.amazonaws.com/IMAGE_NAME:TAG (TAG defaults to latest)"
    echo "  and prints that URI last."
    echo "  --cpu  the CPU image instead (no CUDA, base $CPU_BASE_IMAGE), tagged TAG-cpu"
    echo "  env: AWS_REGION, AWS_PROFILE, BASE_IMAGE, TORCH_INDEX_URL (--cpu), DOCKER (podman)"
}

bad_usage() {
    echo "build_and_push.sh: $1" >&2
    usage_text >&2
    exit 2
}

die() {
    echo "build_and_push.sh: $*" >&2
    exit 1
}

cpu=0
case "${1:-}" in
    -h | --help)
        usage_text
        exit 0
        ;;
    --cpu)
        cpu=1
        shift
        ;;
esac
case "${1:-}" in
    "") bad_usage "missing IMAGE_NAME (the ECR repository name)" ;;
    -*) bad_usage "unknown option '$1'" ;;
esac
[ $# -le 2 ] || bad_usage "too many arguments"

name=$1
tag=${2:-latest}
# The CPU image has its own tag, so one repository holds both and neither replaces the other.
[ "$cpu" = 1 ] && tag=$tag-cpu
# ECR's own rules, checked here so a typo fails before a 10-minute build does.
[[ $name =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] && [ ${#name} -le 256 ] ||
    die "invalid repository name '$name': lowercase letters, digits, and . _ - / between them"
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
    die "invalid tag '$tag': letters, digits, _ . - (at most 128, not starting with . or -)"

docker=${DOCKER:-docker}
command -v "$docker" >/dev/null 2>&1 ||
    die "$docker not found on PATH: install Docker (https://docs.docker.com/get-docker/)," \
        "or use podman with DOCKER=podman"
command -v aws >/dev/null 2>&1 ||
    die "aws CLI not found on PATH: install AWS CLI v2 (https://aws.amazon.com/cli/)"
"$docker" info >/dev/null 2>&1 ||
    die "cannot reach the Docker daemon ($docker info failed): start Docker, or check your access to it"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
if [ -z "$region" ]; then
    region=$(aws configure get region 2>/dev/null) || region=""
fi
[ -n "$region" ] ||
    die "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or run 'aws configure set region REGION'"

if ! account=$(aws sts get-caller-identity --query Account --output text 2>&1); then
    die "no usable AWS credentials (aws sts get-caller-identity failed: ${account})." \
        "Configure them with 'aws configure', AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."
fi
[[ $account =~ ^[0-9]{12}$ ]] || die "unexpected account id from aws sts get-caller-identity: '$account'"

suffix=amazonaws.com
[[ $region == cn-* ]] && suffix=amazonaws.com.cn
registry="$account.dkr.ecr.$region.$suffix"
uri="$registry/$name:$tag"

# The repository: describe it, create it only when ECR says it does not exist.
if ! out=$(aws ecr describe-repositories --region "$region" --repository-names "$name" 2>&1 >/dev/null); then
    [[ $out == *RepositoryNotFoundException* ]] || die "aws ecr describe-repositories failed: $out"
    echo "creating ECR repository $name in $region" >&2
    if ! out=$(aws ecr create-repository --region "$region" --repository-name "$name" 2>&1 >/dev/null); then
        # Created by someone else in between: that is what we wanted.
        [[ $out == *RepositoryAlreadyExistsException* ]] || die "aws ecr create-repository failed: $out"
    fi
fi

login() { # login REGISTRY REGION
    echo "logging in to $1" >&2
    aws ecr get-login-password --region "$2" |
        "$docker" login --username AWS --password-stdin "$1" >&2 ||
        die "docker login to $1 failed"
}

# The base image: BASE_IMAGE, else (--cpu) CPU_BASE_IMAGE, else the default of the
# Dockerfile's `ARG BASE_IMAGE=`.
build_args=()
if [ "$cpu" = 1 ]; then
    base=${BASE_IMAGE:-$CPU_BASE_IMAGE}
    build_args+=(--build-arg "BASE_IMAGE=$base")
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
        # A build argument is recorded in the image's history, pushed with it: a
        # password in the URL would be readable by anyone who can pull the image.
        [[ $TORCH_INDEX_URL =~ ^[a-z+]+://[^/@]*@ ]] &&
            die "TORCH_INDEX_URL holds credentials (user:password@), which the image's" \
                "history would keep; use a mirror that needs none, or pip's own config"
        build_args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
    fi
else
    base=${BASE_IMAGE:-$(sed -n 's/^ARG BASE_IMAGE=//p' "$here/Dockerfile" | head -n 1)}
    [ -n "${BASE_IMAGE:-}" ] && build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
# podman writes OCI images by default, which have no SHELL: the Dockerfile's needs pipefail.
[ "$(basename "$docker")" = podman ] && build_args+=(--format docker)
ecr_host='^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/'
if [[ $base =~ $ecr_host ]] && [ "${base%%/*}" != "$registry" ]; then
    echo "the base image $base is in ECR (AWS Deep Learning Containers)" >&2
    login "${base%%/*}" "${BASH_REMATCH[2]}"
fi
login "$registry" "$region"

echo "building $name:$tag for linux/amd64 from $base" >&2
"$docker" build --platform linux/amd64 ${build_args[@]+"${build_args[@]}"} -t "$name:$tag" "$here" >&2
"$docker" tag "$name:$tag" "$uri" >&2
echo "pushing $uri" >&2
"$docker" push "$uri" >&2
echo "$uri"

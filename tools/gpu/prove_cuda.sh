#!/usr/bin/env bash
# Prove edgeship's CUDA and TensorRT execution-provider paths on a machine with an NVIDIA
# GPU, in one call from the repository root (meant to end within 10 minutes):
#
#   bash tools/gpu/prove_cuda.sh
#
# 1. a venv with onnxruntime-gpu, CUDA/cuDNN and TensorRT's libraries from pip, and what
#    the tests and the runtime import (the project itself runs from this checkout);
# 2. the cuda-marked tests with EDGESHIP_REQUIRE_GPU=1 (a skip is a failure), and the
#    TensorRT options' tests;
# 3. tools/gpu/prove_cuda.py: CPU against CUDA against TensorRT (engine built, then
#    loaded from its cache, then fp16) on a conv stack, with the engine-cache sizes.
#
# Settings (environment):
#   OUT                  also write prove_cuda.log and prove_cuda.json there
#   PYTHON               the Python to make the venv with (default python3)
#   EDGESHIP_GPU_WHEELS  a directory of wheels: install offline from it alone
#   EDGESHIP_ORT         onnxruntime's requirement (default "onnxruntime-gpu[cuda,cudnn]":
#                        PyPI's builds are for CUDA 12 or 13 by version: match the driver)
#   EDGESHIP_TRT_LIBS    TensorRT's libraries (default "tensorrt-cu13-libs<11": the
#                        major version that onnxruntime-gpu's TensorRT provider links)
# Exit status: non-zero when a step failed; the log says which.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
exec > >(tee "$out/prove_cuda.log") 2>&1
venv=$(mktemp -d)/venv
step() { printf '\n== %s (at %d s)\n' "$1" "$SECONDS"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

step "venv and packages"
"${PYTHON:-python3}" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir)
if [ -n "${EDGESHIP_GPU_WHEELS:-}" ]; then
    pip+=(--no-index --find-links "$EDGESHIP_GPU_WHEELS")
fi
"${pip[@]}" "${EDGESHIP_ORT:-onnxruntime-gpu[cuda,cudnn]}" \
    "${EDGESHIP_TRT_LIBS:-tensorrt-cu13-libs<11}" numpy psutil paramiko onnx pytest

# The CUDA, cuDNN and TensorRT libraries pip installed are in no linker path: the runtime
# process (started by the tests and the profile) inherits this one.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
libs=$(find "$site/nvidia" "$site"/tensorrt* -name 'lib*.so*' -printf '%h\n' 2>/dev/null \
    | sort -u | paste -sd: -)
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$repo/sdk:$repo/runtime"
export EDGESHIP_CACHE="$out/cache"
cd "$repo"
"$venv/bin/python" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())'

status=0
step "tests"
EDGESHIP_REQUIRE_GPU=1 "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider \
    tests/sdk/test_profiles_cuda.py tests/sdk/test_trt_options.py || status=1

step "CPU, CUDA, TensorRT"
PYTHONUNBUFFERED=1 "$venv/bin/python" tools/gpu/prove_cuda.py --out "$out" || status=1

step "done: exit status $status"
exit "$status"

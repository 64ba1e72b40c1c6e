#!/usr/bin/env bash
# The correctness checks that need the GPU's own kernels, in one device run
# (the CPU runs cannot see CUDA's ATen or XLA:GPU kernels). Prepare here
# first: bash benchmarks/prepare_gpu.sh; then on the device, with carry
# [".whl", ".whl-extra"]: bash benchmarks/gpu_checks.sh
# For each backend in GPU_CHECK_BACKENDS (default "torch jax"), within
# GPU_CHECK_S seconds each (default 200): the fused-kernel and ATen-clamp
# checks and their meta-tests (tests/property/test_kernels.py,
# tests/meta_tests/test_kernel_check_catches_bugs.py), relu6 at NaN in every
# SIMD lane (tests/property/test_relu6_lanes.py), then every property
# of the layer pairs (tests/property/test_properties.py, ci profile, -n 8),
# with the known-differences summary and one line per test (-v: a run cut
# short by its time limit still names what failed) (the plugin loaded by -p: nothing is
# pip-installed there). Logs: $OUT (or out/gpu-checks).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/out/gpu-checks}
mkdir -p "$out"
# shellcheck source=benchmarks/gpu_env.sh
. benchmarks/gpu_env.sh || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/nvidia-smi.txt"
KERAS_BACKEND=torch python3 -c "import torch, jax, keras; print('torch', torch.__version__, 'jax', jax.__version__, 'keras', keras.__version__)" 2>&1 | tail -1
eval "user_args=(${GPU_CHECK_ARGS:-})"  # shell-quoted, e.g. '-k "kernel or ReLU"'
status=0
for b in ${GPU_CHECK_BACKENDS:-torch jax}; do
  echo "=== KERAS_BACKEND=$b ==="
  KERAS_BACKEND=$b timeout -k 10 "${GPU_CHECK_S:-200}" python3 -m pytest -p no:cacheprovider -p customlayers_pytest -q -rs \
    -n "${GPU_CHECK_WORKERS:-8}" -v --hypothesis-profile=ci "${user_args[@]}" \
    tests/property/test_kernels.py tests/meta_tests/test_kernel_check_catches_bugs.py \
    tests/property/test_relu6_lanes.py \
    tests/property/test_properties.py > "$out/checks-$b.txt" 2>&1
  rc=$?
  grep -E "passed|failed|error|known difference|stale|expected" "$out/checks-$b.txt" | tail -15
  case $rc in
    124|137) echo "$b: did not finish in ${GPU_CHECK_S:-200}s: incomplete, not failed";;
    0) echo "$b: all checks passed";;
    *) echo "$b: exit status $rc"; status=$rc;;
  esac
done
exit $status

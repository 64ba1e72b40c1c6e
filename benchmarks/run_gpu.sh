#!/usr/bin/env bash
# GPU benchmark run, in one go, on the lent H100/H200 (Python 3.12, JAX, PyTorch,
# no TensorFlow, no keras). Prepare first, here: bash benchmarks/prepare_gpu.sh
# then run on the device with carry [".whl", ".whl-extra", ".bench-data"]:
#   bash benchmarks/run_gpu.sh
# It installs the carried keras wheels (the exact line from
# ../shared/tools/device-wheels.sh), then runs the whole suite -- including the
# GPU-only 8192x4096->4096 shape and mixed_float16 -- with KERAS_BACKEND=jax, then
# torch, then tensorflow if TF is importable and sees a GPU, and prints the ratio
# tables. Each backend gets a wall-clock budget (SIGINT at the end, so the
# results measured so far are still saved). Results: $OUT (or out/gpu-bench):
# storage/ (pytest-benchmark JSON, compare with `pytest-benchmark compare`),
# ratios-<backend>.md, log-<backend>.txt.
# Knobs (env): BENCH_GAP_S (60, benchmarks/investigations/jax_autocast_gap.py), BENCH_JAX_S
# (300) and BENCH_TORCH_S (180): each backend's whole budget, on-device checks
# included, BENCH_TF_S (200), BENCH_KERNEL_CHECK (1: first run
# tests/property/test_kernels.py, its meta-test and the equivalence property
# on the device, for at most BENCH_CHECK_S = 90 s, or half the budget),
# BENCH_ROUNDS (11), BENCH_ROUND_TIME (0.005), BENCH_GATE (0.95),
# BENCH_ARGS (extra pytest args, shell-quoted, e.g. '-k "8192 or fit"'),
# BENCH_BACKENDS (default "jax torch tensorflow"), BENCH_TORCH_COMPILE=1.
# The model.fit epoch runs last in each backend (conftest moves it), so a budget
# cut loses it first.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-$root/out/gpu-bench}
mkdir -p "$out"

# shellcheck source=benchmarks/gpu_env.sh
. "$root/benchmarks/gpu_env.sh" || exit
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/nvidia-smi.txt"

extra=()
[ "${BENCH_TORCH_COMPILE:-0}" = 1 ] && extra+=(--bench-torch-compile)
eval "user_args=(${BENCH_ARGS:-})"  # shell-quoted, e.g. BENCH_ARGS='-k "8192 or fit"'
status=0
run_backend() {  # backend, seconds for everything of that backend (checks + suite)
  local b=$1 secs=$2 t0=$SECONDS
  if [ "${BENCH_KERNEL_CHECK:-1}" = 1 ]; then
    local cs=${BENCH_CHECK_S:-90}
    [ "$cs" -gt $((secs / 2)) ] && cs=$((secs / 2))
    # On the GPU's own kernels, which the CPU runs cannot see: the fused
    # ReLU kernel check and its meta-test, and the layer-vs-built-in
    # equivalence property for every layer pair.
    echo "=== KERAS_BACKEND=$b: kernel check and equivalence property on the device ==="
    KERAS_BACKEND=$b timeout -k 10 "$cs" python3 -m pytest -p no:cacheprovider -q -rs \
      tests/property/test_kernels.py tests/meta_tests/test_kernel_check_catches_bugs.py \
      tests/property/test_properties.py -k "kernel or equivalence" \
      > "$out/kernels-$b.txt" 2>&1
    local krc=$?
    tail -4 "$out/kernels-$b.txt"
    if [ $krc -eq 124 ] || [ $krc -eq 137 ]; then
      echo "on-device checks did not finish in ${cs}s ($b): incomplete, not failed"
    else
      echo "on-device checks exit status $krc ($b)"
    fi
    [ $krc -ne 0 ] && status=$krc
  fi
  local left=$((secs - (SECONDS - t0)))
  echo "=== KERAS_BACKEND=$b (budget ${left}s of ${secs}s left for the suite) ==="
  KERAS_BACKEND=$b timeout -s INT -k 30 "$left" python3 -m pytest benchmarks \
    -p no:cacheprovider -q \
    --benchmark-storage="file://$out/storage" --benchmark-save="gpu-$b" \
    --benchmark-columns=median,iqr,rounds,iterations \
    --bench-rounds "${BENCH_ROUNDS:-11}" --bench-round-time "${BENCH_ROUND_TIME:-0.005}" \
    --ratio-gate "${BENCH_GATE:-0.95}" --ratio-table "$out/ratios-$b.md" \
    "${extra[@]}" "${user_args[@]}" > "$out/log-$b.txt" 2>&1
  local rc=$?
  echo "exit status $rc ($b)"; [ $rc -ne 0 ] && status=$rc
  sed -n "/customlayers throughput ratios/,\$p" "$out/log-$b.txt"
}

backends=" ${BENCH_BACKENDS:-jax torch tensorflow} "
if [[ $backends == *" jax "* ]]; then
  # The mixed_bfloat16 gap under JAX (the pre-code baseline): stateless_call vs __call__.
  echo "=== JAX mixed_bfloat16: stateless_call vs __call__ (benchmarks/investigations/jax_autocast_gap.py) ==="
  KERAS_BACKEND=jax timeout -k 10 "${BENCH_GAP_S:-60}" python3 benchmarks/investigations/jax_autocast_gap.py \
    2>&1 | grep -v "^WARNING\|^I0000\|^E0000" | tee "$out/jax-autocast-gap.md"
  run_backend jax "${BENCH_JAX_S:-300}"
fi
[[ $backends == *" torch "* ]] && run_backend torch "${BENCH_TORCH_S:-180}"
if [[ $backends != *" tensorflow "* ]]; then
  :
elif python3 -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)" 2>/dev/null; then
  run_backend tensorflow "${BENCH_TF_S:-200}"
else
  echo "=== tensorflow: not importable or sees no GPU; skipped ==="
fi
echo "results in $out"
exit $status

# Sourced on the lent GPU machine (Python 3.12, PyTorch and JAX, no keras) by
# benchmarks/run_gpu.sh and benchmarks/gpu_checks.sh, from the repository root:
# installs the carried keras wheels (.whl, from benchmarks/prepare_gpu.sh)
# and those of keras's other dependencies the device lacks (.whl-extra), and
# sets the offline cache. Returns non-zero if the install fails.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || return 1
# keras's other dependencies: install only those the device lacks.
if [ -d .whl-extra ]; then
  for mod_pkg in absl:absl_py rich:rich markdown_it:markdown_it_py mdurl:mdurl pygments:pygments h5py:h5py packaging:packaging ml_dtypes:ml_dtypes platformdirs:platformdirs; do
    mod=${mod_pkg%%:*}; pkg=${mod_pkg##*:}
    if ! python3 -c "import $mod" 2>/dev/null; then
      echo "installing carried $pkg"
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl-extra/${pkg}-*.whl
    fi
  done
fi

export CUSTOMLAYERS_OFFLINE=1 CUSTOMLAYERS_CACHE=/tmp/customlayers-cache
[ -f .bench-data/mnist.npz ] && export CUSTOMLAYERS_BENCH_MNIST=$PWD/.bench-data/mnist.npz
export XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2

#!/usr/bin/env bash
# Run HERE (the CPU machine, with internet) before the GPU run. It prepares the
# ignored folders that the device run carries:
#   .whl/        keras + namex + optree for Python 3.12 (../shared/tools/device-wheels.sh)
#   .whl-extra/  keras's other pure deps (absl-py, rich, ...) and h5py, installed on
#                the device only where it lacks them
#   .bench-data/ mnist.npz (compressed, ~11 MB) for the model.fit benchmark: the
#                device is offline
# Then start the device run with
#   carry [".whl", ".whl-extra", ".bench-data"], command "bash benchmarks/run_gpu.sh", timeout_s 600
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=.venv/bin/python
bash ../shared/tools/device-wheels.sh "$($py -c 'import keras; print(keras.__version__)')"
for d in .whl-extra .bench-data; do
  grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >> .git/info/exclude
done
mkdir -p .whl-extra .bench-data
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl-extra absl-py rich markdown-it-py mdurl pygments h5py packaging ml_dtypes platformdirs
$py - <<'PY'
import numpy as np
from customlayers.datasets import load_mnist
(xt, yt), (xs, ys) = load_mnist()
np.savez_compressed(".bench-data/mnist.npz", x_train=xt, y_train=yt, x_test=xs, y_test=ys)
print("wrote .bench-data/mnist.npz")
PY
du -sh .whl .whl-extra .bench-data

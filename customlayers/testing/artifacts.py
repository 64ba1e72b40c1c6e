"""Where failure artifacts (``.npz`` replays) go, and how much they keep.

A failing check saves the arrays needed to replay it (input, upstream
gradient, weights) as an ``.npz``. They go to, in order:

1. the ``directory`` a caller names (``customlayers verify --artifacts``,
   ``run_equivalence_test(artifacts=...)``, pytest ``--cl-artifacts``);
2. ``$CUSTOMLAYERS_ARTIFACTS``;
3. ``failures/`` in the project's cache folder (``$CUSTOMLAYERS_CACHE``, else
   the platform's user cache folder from ``platformdirs``, which honours
   ``XDG_CACHE_HOME``).

The default folder is capped at :data:`DEFAULT_CAP_BYTES`: after each write
the oldest files are removed until it fits. A folder the caller named is
never pruned.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib

import numpy as np

#: Size cap of the default failures folder (64 MiB).
DEFAULT_CAP_BYTES = 64 * 2 ** 20


def cache_root() -> pathlib.Path:
    """The project's cache folder."""
    env = os.environ.get("CUSTOMLAYERS_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    import platformdirs
    return pathlib.Path(platformdirs.user_cache_dir("customlayers"))


def artifact_dir(directory=None) -> tuple[pathlib.Path, bool]:
    """``(folder, capped)``: where artifacts go and whether it is pruned."""
    if directory:
        return pathlib.Path(directory).expanduser(), False
    env = os.environ.get("CUSTOMLAYERS_ARTIFACTS")
    if env:
        return pathlib.Path(env).expanduser(), False
    return cache_root() / "failures", True


def _prune(folder: pathlib.Path, cap: int) -> None:
    files = sorted((p for p in folder.glob("*.npz") if p.is_file()),
                   key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    for p in files[:-1]:  # never the file just written
        if total <= cap:
            break
        total -= p.stat().st_size
        p.unlink(missing_ok=True)


def save_arrays(arrays: dict, directory=None,
                cap: int = DEFAULT_CAP_BYTES) -> pathlib.Path:
    """Save ``arrays`` (name -> array, kept in their own dtypes; bfloat16 as
    float32 plus a ``<name>__dtype`` entry) to an ``.npz`` named by its
    content hash; return its path."""
    payload = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype.name == "bfloat16":
            payload[k] = a.astype(np.float32)
            payload[f"{k}__dtype"] = np.array("bfloat16")
        else:
            payload[k] = a
    buf = io.BytesIO()
    np.savez(buf, **payload)
    folder, capped = artifact_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha1(buf.getvalue()).hexdigest()[:16]}.npz"
    path.write_bytes(buf.getvalue())
    if capped:
        _prune(folder, cap)
    return path


def load_arrays(path) -> dict:
    """What :func:`save_arrays` wrote, with bfloat16 restored."""
    import ml_dtypes
    with np.load(path, allow_pickle=False) as f:
        out = {k: f[k] for k in f.files if not k.endswith("__dtype")}
        for k in f.files:
            if k.endswith("__dtype"):
                name = k[: -len("__dtype")]
                out[name] = out[name].astype(ml_dtypes.bfloat16)
    return out

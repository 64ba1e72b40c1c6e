"""Role: byte-level helpers shared by the parsers and sources (file hashing,
gzip with an output limit, environment flags)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from typing import Union

from customlayers.datasets.errors import DataIntegrityError

PathLike = Union[str, "os.PathLike[str]"]


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gunzip(raw: bytes, limit: int, what: str) -> bytes:
    """Decompress gzip bytes, refusing more than ``limit`` bytes of output."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            out = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataIntegrityError(f"{what}: not a readable gzip file ({e})") from None
    if len(out) > limit:
        raise DataIntegrityError(f"{what}: decompresses to more than {limit} bytes")
    return out


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")

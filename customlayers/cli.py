"""The ``customlayers`` command line.

- ``customlayers verify``: run the equivalence battery and print the table.
- ``customlayers train``: train the custom model and its built-in twin on
  MNIST side by side.
- ``customlayers data mnist``: fetch MNIST into the cache and say where.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="customlayers",
        description="Hand-written Keras layers and the proof that they "
                    "match the built-ins.")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verify", help="run the equivalence battery")
    from customlayers import verify
    verify.add_arguments(v)

    t = sub.add_parser("train", help="train custom vs built-in on MNIST")
    try:
        from customlayers.training import add_train_arguments
    except ImportError as exc:  # pragma: no cover - defensive
        t.set_defaults(_train_error=str(exc))
    else:
        add_train_arguments(t)

    d = sub.add_parser("data", help="fetch data sets into the cache")
    d.add_argument("dataset", choices=["mnist"])
    d.add_argument("--cache-dir", help="cache folder (default: "
                   "$CUSTOMLAYERS_CACHE, else the user cache folder, "
                   "e.g. ~/.cache/customlayers)")
    d.add_argument("--path", help="an mnist.npz or a folder of IDX files "
                   "to import instead of downloading (nothing else is tried)")
    return p


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    if args.command == "verify":
        from customlayers import verify
        return verify.main(args)
    if args.command == "train":
        if getattr(args, "_train_error", None):
            print(f"training is unavailable: {args._train_error}",
                  file=sys.stderr)
            return 2
        from customlayers.training import run_train
        return run_train(args)
    if args.command == "data":
        return _data(args)
    return 2  # pragma: no cover


def _data(args) -> int:
    """``customlayers data mnist``: fill the cache; exit 1 with the reason."""
    from customlayers import datasets

    def report(line):
        print(line, file=sys.stderr, flush=True)

    try:
        path = datasets.prefetch_mnist(cache_dir=args.cache_dir, path=args.path,
                                       report=report)
    except (datasets.MNISTUnavailableError, datasets.DataIntegrityError,
            OSError) as exc:
        print(f"customlayers data mnist: {exc}", file=sys.stderr)
        return 1
    print(f"MNIST is cached at {path}")
    print(f"source: {datasets.describe_mnist_source()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

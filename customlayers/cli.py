"""The ``customlayers`` command line; it lives in the top-level module
:mod:`customlayers_cli`, which imports nothing of this package (and so no
Keras) to parse arguments: see there. Re-exported here for
``python -m customlayers`` and existing imports."""

from customlayers_cli import (add_train_arguments, main,  # noqa: F401
                              run_train)

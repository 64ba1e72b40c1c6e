"""``python -m customlayers``: the same as the ``customlayers`` command
(which starts faster: this imports the package, hence Keras, first)."""

import sys

from customlayers_cli import main

sys.exit(main())

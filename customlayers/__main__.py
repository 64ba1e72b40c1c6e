"""``python -m customlayers``: the same as the ``customlayers`` command."""

import sys

from customlayers.cli import main

sys.exit(main())

"""``python -m qopt``: the ``qopt`` command."""

import sys

from qopt.cli import main

sys.exit(main())

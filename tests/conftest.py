"""Test configuration: the numpy oracle and the IR evaluator live beside the tests.

Hypothesis runs derandomized and without its example database when ``CI`` is set (as
``.ci/run`` does), so a CI run is reproducible and never depends on a failure stored by an
earlier run; every failure hypothesis ever found is kept in the tests as an explicit
``@example``. Locally it explores new inputs on each run (``HYPOTHESIS_PROFILE=ci`` to
reproduce CI).
"""

import os
import sys

from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

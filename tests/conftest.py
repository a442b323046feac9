"""Test configuration. The numpy oracle and the IR evaluator live in ``tests.support``; the
tests import ``qopt`` from the installed package (the source is under ``src/``).

Hypothesis runs derandomized and without its example database when ``CI`` is set (as
``.ci/run`` does), so a CI run is reproducible and never depends on a failure stored by an
earlier run; every failure hypothesis ever found is kept in the tests as an explicit
``@example``. Locally it explores new inputs on each run (``HYPOTHESIS_PROFILE=ci`` to
reproduce CI).
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

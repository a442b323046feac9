"""Test configuration: the numpy oracle and the IR evaluator live beside the tests."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

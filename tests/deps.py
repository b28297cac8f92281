"""Test dependencies: skip locally with the reason, fail under CI=true (parity must run in CI)."""
import importlib.util

import pytest


def require(*modules):
    """Skips (a failure with CI=true) unless every module in `modules` is importable; checked
    with find_spec so that nothing is imported (torch and TensorFlow stay out of one process)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:   # "not installed": tests/ci_gate.py turns this skip into a failure under CI=true
        pytest.skip(f"{missing} not installed (test extra)")

"""Test dependencies: skip locally with the reason, fail under CI=true (parity must run in CI)."""
import importlib.util
import os

import pytest


def require(*modules):
    """Skips (or, with CI=true, fails) unless every module in `modules` is importable; checked with
    find_spec so that nothing is imported (torch and TensorFlow are kept out of one process)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: test dependencies missing: {missing}")
        pytest.skip(f"{missing} not installed (test extra)")

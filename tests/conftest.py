import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import types  # noqa: E402

import pytest  # noqa: E402

# Under CI=true a missing test dependency fails the run instead of skipping (see tests/ci_gate.py).
from tests.ci_gate import (pytest_make_collect_report, pytest_runtest_makereport,  # noqa: E402,F401
                           pytest_sessionstart)

# Per-test timeouts (pytest-timeout). pyproject sets the default for every test; these get more.
SLOW_TIMEOUT = 3600  # @pytest.mark.slow: trainings to an accuracy bar, every model size
LONG_DEFAULT_TIER = {  # default-tier tests that run a whole example end to end (s on 2 shared cores)
    "tests/test_cli.py::test_demo_smoke": 900,
    "tests/heads/test_heads.py::test_detect_example_smoke": 900,
    "tests/heads/test_heads.py::test_segment_example_smoke": 900,
}
# Names from tests/timm_fixture.py: a test reaching one of them needs torch + timm.
TIMM_NAMES = {"make_fixture", "timm_float32_error", "HAVE_TIMM"}


def _reaches(code, module_globals, names, seen):
    """Whether `code`, or a function of its module that it calls, mentions one of `names`."""
    if code in seen:
        return False
    seen.add(code)
    if names & set(code.co_names):
        return True
    nested = [c for c in code.co_consts if isinstance(c, types.CodeType)]
    called = [getattr(module_globals.get(n), "__code__", None) for n in code.co_names]
    return any(_reaches(c, module_globals, names, seen) for c in nested + called
               if isinstance(c, types.CodeType))


def _needs_timm(item):
    module = getattr(item, "module", None)
    funcs = [getattr(item, "function", None)]
    funcs += [defs[-1].func for defs in getattr(item, "_fixtureinfo", None).name2fixturedefs.values()] \
        if getattr(item, "_fixtureinfo", None) else []
    seen = set()
    return module is not None and any(
        _reaches(f.__code__, vars(module), TIMM_NAMES, seen) for f in funcs if hasattr(f, "__code__"))


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _needs_timm(item):
            item.add_marker(pytest.mark.timm)
        if item.get_closest_marker("timeout") is None:
            seconds = SLOW_TIMEOUT if item.get_closest_marker("slow") else LONG_DEFAULT_TIER.get(
                item.nodeid.split("[")[0])
            if seconds:
                item.add_marker(pytest.mark.timeout(seconds))


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """No test touches the user's ~/.keras or Hugging Face cache, or the network."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("KERAS_HOME", str(root / "keras_home"))
    monkeypatch.setenv("HF_HOME", str(root / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf_home" / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # closed port: any real download fails fast
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _no_leaked_op_determinism():
    """Examples run in-process with --seed turn on TF op determinism (training.set_seed), which is
    process-wide and slows later tests' pipelines ~3x: switch it off again after each test."""
    yield
    import sys
    if "tensorflow" not in sys.modules:
        return
    from tensorflow.python.framework import config as tf_config  # private; checked on TF 2.21
    if tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()

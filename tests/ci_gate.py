"""Honest CI: with CI=true a missing test dependency fails the run instead of skipping.

Locally, tests whose dependency is absent skip with a reason (`pytest.importorskip`,
`tests/timm_fixture.make_fixture`, "... not installed" skips). Under CI=true (set by GitHub
Actions, GitLab and `.ci/run`) two checks make such a skip impossible to miss:

- up front, every runtime dependency and every requirement of the `test` extra in
  pyproject.toml must be installed at a matching version, or the session stops (exit 4)
  naming what is missing;
- any test or module that still skips for a missing module (an import that fails although
  the distribution is installed, or a module outside the extra) is reported as failed.

tests/conftest.py imports the hooks; tests/test_ci_gate.py runs them in a child pytest.
"""
import importlib.metadata
import os
import re

import pytest

# Skip reasons that mean "a dependency is missing": pytest.importorskip says
# "could not import 'x': ...", hand-written guards say "... not installed".
MISSING_DEPENDENCY = re.compile(r"could not import |not installed")


def ci_enabled():
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def _requirements(pyproject):
    """Runtime dependencies + the `test` extra, as requirement strings ([] without a pyproject)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: fall back to the installed distribution's metadata
        return importlib.metadata.requires("keras_mobile") or []  # markers select the extra
    if not os.path.isfile(pyproject):
        return []
    with open(pyproject, "rb") as f:
        project = tomllib.load(f).get("project", {})
    return list(project.get("dependencies", [])) + list(project.get("optional-dependencies", {}).get("test", []))


def missing_requirements(pyproject):
    """Requirements of pyproject's dependencies + test extra that are absent or at a wrong version."""
    from packaging.requirements import Requirement
    missing = []
    for text in _requirements(pyproject):
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": "test"}):
            continue
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{req} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(f"{req} (found {version})")
    return missing


def pytest_sessionstart(session):
    if not ci_enabled():
        return
    missing = missing_requirements(os.path.join(str(session.config.rootpath), "pyproject.toml"))
    if missing:
        pytest.exit("CI=true but test dependencies are missing, so their tests would only skip: "
                    + "; ".join(missing) + '. Install the test extra: pip install -e ".[test]"',
                    returncode=pytest.ExitCode.USAGE_ERROR)


def fail_missing_dependency_skip(report):
    """Under CI=true, turns a skip whose reason is a missing module into a failure (in place)."""
    if not (ci_enabled() and report.skipped and not hasattr(report, "wasxfail")):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if MISSING_DEPENDENCY.search(reason):
        report.outcome = "failed"
        report.longrepr = f"CI=true: a test dependency is missing, so this cannot be a skip: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    fail_missing_dependency_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    fail_missing_dependency_skip(report)  # module-level importorskip skips the whole file
    return report

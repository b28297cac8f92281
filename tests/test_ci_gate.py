"""tests/ci_gate.py in a child pytest: under CI=true a missing dependency fails the run, without
CI it skips with the reason; the up-front check names missing or mismatched requirements."""
import os

import pytest

pytest_plugins = "pytester"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the child imports tests.ci_gate from here

GATED_CONFTEST = "from tests.ci_gate import pytest_make_collect_report, pytest_runtest_makereport, pytest_sessionstart\n"
ABSENT = "keras_mobile_absent_module"


def _child_imports_tests(monkeypatch):
    """The child pytest runs in a temp folder: put the repo root on its path (a fresh clone has no
    PYTHONPATH) so that its conftest can import tests.ci_gate / tests.conftest."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))


@pytest.fixture
def child(pytester, monkeypatch):
    pytester.makeconftest(GATED_CONFTEST)
    pytester.makepyfile(
        test_deps=f"""
        import pytest

        def test_needs_absent_module():
            pytest.importorskip("{ABSENT}")

        def test_needs_timm_fixture(monkeypatch):
            import tests.timm_fixture as fixture
            monkeypatch.setattr(fixture, "MISSING_TIMM", ["torch"])
            fixture.make_fixture("mobilenetv3_small_100")

        def test_skips_for_another_reason():
            pytest.skip("needs a GPU")

        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert False

        def test_passes():
            pass
        """,
        test_module_dep=f"""
        import pytest
        pytest.importorskip("{ABSENT}")

        def test_never_collected():
            pass
        """)
    monkeypatch.delenv("CI", raising=False)
    _child_imports_tests(monkeypatch)
    return pytester


def test_without_ci_missing_dependencies_skip_with_the_reason(child):
    result = child.runpytest_subprocess("-ra", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    result.stdout.fnmatch_lines([f"*could not import '{ABSENT}'*", "*torch not installed*", "*needs a GPU*"])
    assert result.ret == 0


@pytest.mark.parametrize("value", ["true", "1"])
def test_under_ci_missing_dependencies_fail(child, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    result = child.runpytest_subprocess("-ra", "-p", "no:cacheprovider", "--continue-on-collection-errors")
    # the two test-level skips fail, the module-level one is a collection error (which alone stops
    # a run without --continue-on-collection-errors); the GPU skip stays a skip
    result.assert_outcomes(passed=1, skipped=1, failed=2, errors=1, xfailed=1)
    result.stdout.fnmatch_lines([f"*CI=true: a test dependency is missing*could not import '{ABSENT}'*",
                                 "*CI=true: a test dependency is missing*torch not installed*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_under_ci_an_incomplete_test_extra_stops_the_session(child, monkeypatch):
    child.makefile(".toml", pyproject="""
        [project]
        name = "x"
        dependencies = ["pytest>=8"]
        [project.optional-dependencies]
        test = ["keras-mobile-absent-dist>=1", "pytest<1", "numpy>=1; extra == 'other'"]
        """)
    monkeypatch.setenv("CI", "true")
    result = child.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*test dependencies are missing*keras-mobile-absent-dist>=1 (not installed)"
                                 "; pytest<1 (found *)*"])
    assert "numpy" not in result.stdout.str()  # another extra's requirement is not asked for
    monkeypatch.delenv("CI")
    child.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=4, xfailed=1)


def test_conftest_marks_timm_tests_and_gives_slow_tests_a_longer_timeout(pytester, monkeypatch):
    """tests/conftest.py: `timm` on tests that reach tests/timm_fixture.py (directly, through a
    helper or a fixture), 3600 s for slow tests, a test's own timeout kept."""
    monkeypatch.delenv("CI", raising=False)
    _child_imports_tests(monkeypatch)
    pytester.makeconftest("""
        from tests.conftest import pytest_collection_modifyitems

        def pytest_collection_finish(session):
            for item in session.items:
                timeout = item.get_closest_marker("timeout")
                print("ITEM", item.name, "timm" if item.get_closest_marker("timm") else "-",
                      timeout.args[0] if timeout else "default")
        """)
    pytester.makepyfile(test_parity="""
        import pytest
        from tests.timm_fixture import make_fixture

        def reference():
            return make_fixture("mobilenetv3_small_100")

        @pytest.fixture
        def logits():
            return reference()

        def test_direct():
            make_fixture("mobilenetv3_small_100")

        def test_through_a_helper():
            reference()

        def test_through_a_fixture(logits):
            pass

        def test_plain():
            pass

        @pytest.mark.slow
        def test_slow():
            pass

        @pytest.mark.slow
        @pytest.mark.timeout(42)
        def test_slow_with_its_own_timeout():
            pass
        """)
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["ITEM test_direct timm default", "ITEM test_through_a_helper timm default",
                                 "ITEM test_through_a_fixture timm default", "ITEM test_plain - default",
                                 "ITEM test_slow - 3600", "ITEM test_slow_with_its_own_timeout - 42"])

"""scripts/mobileone_crash_ab.py counts only runs killed by a signal as crashes; a run that exits with an
error is reported apart, with its stderr tail."""
from tests.benchmark_module import load_benchmark

ab = load_benchmark("mobileone_crash_ab", folder="scripts")

RUNS = [{"arm": "before", "rc": -11, "signal": "SIGSEGV", "load1_before": 1.0, "load1_after": 2.0, "seconds": 80},
        {"arm": "after", "rc": 0, "signal": None, "load1_before": 2.0, "load1_after": 2.5, "seconds": 90},
        {"arm": "before", "rc": -6, "signal": "SIGABRT", "load1_before": 2.5, "load1_after": 3.0, "seconds": 70},
        {"arm": "after", "rc": 1, "signal": None, "stderr_tail": ["ModuleNotFoundError: No module named 'keras_mobile'"],
         "load1_before": 3.0, "load1_after": 3.0, "seconds": 5},
        {"arm": "before", "rc": -11, "signal": "SIGSEGV", "load1_before": 3.0, "load1_after": 4.0, "seconds": 60}]


def test_only_signals_count_as_crashes():
    t = ab.tally(RUNS)
    assert [t["before"][k] for k in ("runs", "crashes", "signals")] == [3, 3, {"SIGSEGV": 2, "SIGABRT": 1}]
    assert t["after"]["runs"] == 2 and t["after"]["crashes"] == 0
    assert [r["rc"] for r in t["after"]["errors"]] == [1]


def test_an_error_run_is_reported_with_its_stderr_not_as_a_crash():
    lines = ab.summary_lines(RUNS)
    assert lines[:2] == ["before: 3/3 crashed (2 SIGSEGV, 1 SIGABRT), 0 exited with an error",
                         "after: 0/2 crashed (none), 1 exited with an error"]
    assert "No module named 'keras_mobile'" in lines[2] and "not a crash" in lines[2]
    md = ab.markdown(RUNS)
    assert "| before |" in md and "3 (2 SIGSEGV, 1 SIGABRT)" in md and "1.0-4.0" in md

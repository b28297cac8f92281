"""benchmarks/onednn_training.py counts only runs killed by a signal as oneDNN crashes."""
import pytest

from tests.benchmark_module import load_benchmark

bench = load_benchmark("onednn_training")


def test_only_signals_count_as_crashes():
    runs = [{"model": "M", "onednn": "on", "rc": -11, "round": 0},
            {"model": "M", "onednn": "off", "rc": 0, "round": 0, "steps_per_s": 2.0},
            {"model": "M", "onednn": "on", "rc": 0, "round": 1, "steps_per_s": 4.0},
            {"model": "M", "onednn": "off", "rc": 0, "round": 1, "steps_per_s": 3.0}]
    s = bench.summarize(runs, ["M"])["M"]
    assert s["crashes"] == {"on": 1, "off": 0}
    assert s["off_over_on"] == pytest.approx(0.75) and s["rounds_compared"] == 1


def test_a_failing_run_is_an_error_not_a_crash():
    # the worker raises (an unknown model): exit code 1, reported with its message
    with pytest.raises(SystemExit, match="exit code 1, not a crash"):
        bench.one_run("NoSuchModel", "on", 2, 32)


def test_an_unknown_model_is_refused_before_any_run(capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--models", "MobileNetV3Smal", "--rounds", "1"])
    assert e.value.code == 2 and "MobileNetV3Smal" in capsys.readouterr().err

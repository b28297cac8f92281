"""Slow tier: benchmarks/search_pareto.py, single seed, reduced (MobileNetV3Small only)."""
import importlib.util
from pathlib import Path

import pytest


def _benchmark():
    path = Path(__file__).parents[2] / "benchmarks" / "search_pareto.py"
    spec = importlib.util.spec_from_file_location("search_pareto", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_netadapt_not_worse_than_the_width_multiplier_at_equal_latency(tmp_path):
    """The reduced benchmark (the configuration of benchmarks/results/search_pareto.md, seed 0,
    MobileNetV3Small): NetAdapt from a trained parent to the measured int8 latency of the alpha=0.75
    model, vs that model trained with the same number of steps. The benchmark could not show a
    gain on this shared machine (see the results file), so the bar is "not worse by more than
    MARGIN points" plus the latency match it relies on; it fails if the search picks clearly
    worse proposals than a uniform cut or misses the budget."""
    bench = _benchmark()
    res = bench.main(["--models", "MobileNetV3Small", "--seeds", "0", "--edgetpu-seeds",
                      "--train", "2000", "--val", "200", "--test", "2000", "--pretrain-steps", "200",
                      "--short-term-steps", "5", "--long-term-epochs", "0", "--step", "0.15",
                      "--multiplier", "0.75", "--knobs", "out", "--max-iterations", "2", "--lr", "3e-3",
                      "--long-term-lr", "1e-3", "--rounds", "300",
                      "--out", str(tmp_path), "--work", str(tmp_path / "work")])
    r = res["runs"]["MobileNetV3Small/seed0"]
    assert "errors" not in r, r.get("errors")
    assert r["netadapt"]["lineage_steps"] == r["baselines"]["matched"]["steps"]
    assert abs(r["timing"]["netadapt_over_matched"] - 1) <= LATENCY_TOLERANCE, r["timing"]
    assert r["equal_latency"]["accuracy_diff_points"] >= -MARGIN, (r["netadapt"], r["baselines"])


MARGIN = 3.0               # points; set from the benchmark's seed-0 numbers (see the docstring)
LATENCY_TOLERANCE = 0.10

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
    """The reduced benchmark (`--quick`, the configuration of benchmarks/results/search_pareto.md;
    seed 0, MobileNetV3Small, ~30 min on the shared 2 cores): NetAdapt from the pretrained parent
    to the measured int8 latency of the alpha=0.75 model, vs that model trained with the same
    number of steps. Bars: the latency match the comparison relies on (10 %) and accuracy not
    worse by more than MARGIN points (~3 paired standard errors on 2,000 test images).
    The recorded run does NOT pass the latency bar: NetAdapt / matched = 1.31 (no single
    output-width knob cuts 15 % of the predicted latency at 32 px, and 2 iterations of the
    most accurate sub-target proposal cut 2 %), and every model was at chance accuracy after
    200 steps (10.1 / 8.9 %), so the accuracy bar says nothing yet. Kept failing on purpose
    until the search reaches the budget (issue 17)."""
    bench = _benchmark()
    res = bench.main(["--quick", "--models", "MobileNetV3Small", "--seeds", "0",
                      "--out", str(tmp_path), "--work", str(tmp_path / "work")])
    r = res["runs"]["MobileNetV3Small/seed0"]
    assert "errors" not in r, r.get("errors")
    assert r["netadapt"]["lineage_steps"] == r["baselines"]["matched"]["steps"]
    assert abs(r["timing"]["netadapt_over_matched"] - 1) <= LATENCY_TOLERANCE, r["timing"]
    assert r["equal_latency"]["accuracy_diff_points"] >= -MARGIN, (r["netadapt"], r["baselines"])


MARGIN = 3.0               # points; set from the benchmark's seed-0 numbers (see the docstring)
LATENCY_TOLERANCE = 0.10

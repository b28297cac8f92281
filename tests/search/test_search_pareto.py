"""benchmarks/search_pareto.py: its --work and --quick settings, and (slow tier) the reduced run,
single seed, MobileNetV3Small only."""
import pytest

from tests.benchmark_module import load_benchmark


def _benchmark():
    return load_benchmark("search_pareto")


def test_a_work_folder_made_with_other_settings_is_refused(tmp_path):
    """--work caches parents, budgets and searches: reusing it with other settings must fail
    up front, naming the setting, while the same settings (or another model's multiplier) resume."""
    bench = _benchmark()
    quick = ["--quick", "--models", "MobileNetV3Small"]
    bench.check_work(str(tmp_path), bench.config(bench.parse_args(quick)))
    bench.check_work(str(tmp_path), bench.config(bench.parse_args(quick)))       # same settings: fine
    bench.check_work(str(tmp_path), bench.config(bench.parse_args(quick[:1] + ["--models", "MobileNetV4ConvS"])))
    there = bench.QUICK["pretrain_steps"]
    with pytest.raises(ValueError, match=rf"other settings \(pretrain_steps: {there} there, 300 here\)"):
        bench.check_work(str(tmp_path), bench.config(bench.parse_args(quick + ["--pretrain-steps", "300"])))
    with pytest.raises(ValueError, match=r"multiplier of MobileNetV3Small: 0.5 there, 0.75 here"):
        bench.check_work(str(tmp_path), bench.config(bench.parse_args(quick + ["--multiplier", "0.75"])))
    old = tmp_path / "old"
    (old / "MobileNetV3Small_seed0").mkdir(parents=True)
    with pytest.raises(ValueError, match="no settings.json"):
        bench.check_work(str(old), bench.config(bench.parse_args(quick)))


def test_quick_sets_defaults_that_given_options_override():
    bench = _benchmark()
    a = bench.parse_args(["--quick", "--max-iterations", "3", "--multiplier", "0.75"])
    # the given options win; the others take --quick's values
    assert (a.max_iterations, a.pretrain_steps, a.knobs) == (3, bench.QUICK["pretrain_steps"], bench.QUICK["knobs"])
    assert a.lr == bench.parse_args([]).lr        # --quick keeps the protocol's learning rate
    assert a.multipliers == {"MobileNetV3Small": 0.75, "MobileNetV4ConvS": 0.75}
    assert bench.parse_args(["--quick"]).multipliers == bench.MULTIPLIERS


def test_a_failing_slimming_arm_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    """Slimming is an extra arm: any error in it (not only a budget it cannot reach, a ValueError)
    is recorded with its type in the results and the markdown, and run_slim returns None so that
    run_model still times NetAdapt against the baselines."""
    import keras_mobile.search as search
    bench = _benchmark()

    def broken(*args, **kwargs):
        raise RuntimeError("supernet training diverged")
    monkeypatch.setattr(search, "slim", broken)
    r, said = {"model": "MobileNetV3Small", "seed": 0}, []
    no_data = ((None, None), (None, None), None)
    args = bench.parse_args(["--quick"])
    assert bench.run_slim(args, r, None, 0.2, None, no_data, None, str(tmp_path), 1, 16, 625, 0, said.append) is None
    assert r["slim"] == {"error": "RuntimeError: supernet training diverged"}
    assert said == ["slimming failed: RuntimeError: supernet training diverged"]
    md = bench.render({"config": bench.config(args), "runs": {"MobileNetV3Small/seed0": r}})
    assert "Slimming MobileNetV3Small seed 0: RuntimeError: supernet training diverged" in md


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_netadapt_beats_the_width_multiplier_at_equal_latency(tmp_path):
    """The reduced benchmark (`--quick`: MobileNetV3Small seed 0, hard_digits at 48 px, a 2,400-step
    parent; 20-45 min on the shared 2 cores): NetAdapt from the parent (all knobs, at most 6
    iterations) to the measured int8 latency of the alpha=0.5 model, vs that model trained from
    scratch with the same number of steps. Bars: the benchmark's own "equal latency" (within 5 %)
    and the issue's goal, at least 1 point more accurate. The runs recorded in
    benchmarks/results/search_pareto_quick.md (2026-12-03, seeds 0-4): seed 0, this test's, passes both
    (latency ratio 1.005 and 0.960 in two timings; NetAdapt 71.87 % vs 48.60 %, +23.27 +- 0.58 points
    on 10,000 test images, 5 iterations); seeds 2 and 4 pass (0.963, +7.98; 0.984, +18.17), seeds 1
    and 3 would FAIL the accuracy bar (1.016, -3.35; 0.987, -3.87): 3 of 5 seeds, so passing here is
    one seed's result, not the issue's goal (the seed spread, driven by the from-scratch parent and
    baseline, is far larger than its 1 point). Slimming, the third arm,
    must run without error (its failure no longer stops the run, so it is checked here)."""
    bench = _benchmark()
    res = bench.main(["--quick", "--models", "MobileNetV3Small", "--seeds", "0",
                      "--out", str(tmp_path), "--work", str(tmp_path / "work")])
    r = res["runs"]["MobileNetV3Small/seed0"]
    assert "errors" not in r, r.get("errors")
    assert "error" not in r["slim"], r["slim"]
    assert r["netadapt"]["lineage_steps"] == r["baselines"]["matched"]["steps"]
    assert abs(r["timing"]["netadapt_over_matched"] - 1) <= bench.EQUAL, r["timing"]
    assert r["equal_latency"]["accuracy_diff_points"] >= bench.GOAL_POINTS, (r["netadapt"], r["baselines"])


def test_across_seeds_counts_the_goal_with_an_exact_sign_test():
    bench = _benchmark()
    s = bench.across_seeds([23.3, -3.4, 8.0, 2.0, 5.0, 0.5])
    assert (s["n"], s["at_goal"], s["median"]) == (6, 4, 3.5)
    assert s["mean"] == pytest.approx(35.4 / 6)
    assert s["sign_test_p"] == pytest.approx((15 + 6 + 1) / 64)      # P(Bin(6, 1/2) >= 4)
    lo, hi = s["bootstrap_ci95"]
    assert -3.4 <= lo < s["mean"] < hi <= 23.3
    assert bench.across_seeds([2.0] * 6)["sign_test_p"] == pytest.approx(1 / 64)
    assert bench.across_seeds([2.0] * 6)["bootstrap_ci95"] == (2.0, 2.0)
    # a seed exactly at the goal is neither above nor below it: the sign test drops it
    assert bench.across_seeds([1.0, 3.0])["sign_test_p"] == pytest.approx(1 / 2)


def _results(seeds, **config):
    """A results dict with one recorded run (benchmarks/results/search_pareto_quick.json) per seed."""
    import copy
    import json
    from pathlib import Path
    rec = json.loads((Path(__file__).parents[2] / "benchmarks/results/search_pareto_quick.json").read_text())
    run = {k: v for k, v in next(iter(rec["runs"].values())).items() if k != "clock"}   # clock: the results' own
    runs = {f"{run['model']}/seed{s}": {**copy.deepcopy(run), "seed": s} for s in seeds}
    return {"config": {**rec["config"], **config}, "runs": runs, "status": "complete", "wall_s": 60.0,
            "notes": [f"seeds {seeds}"]}


def test_merge_combines_seeds_run_apart_into_one_table(tmp_path):
    """Seeds run in separate invocations (other --name) merge into one results file whose markdown
    has every seed and the across-seeds summary; nothing is trained."""
    import json
    bench = _benchmark()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_results([3, 4])))
    b.write_text(json.dumps(_results([0, 1])))
    res = bench.main(["--merge", str(a), str(b), "--out", str(tmp_path), "--name", "both"])
    assert [r["seed"] for r in res["runs"].values()] == [0, 1, 3, 4]
    assert res["notes"] == ["seeds [3, 4]", "seeds [0, 1]"] and res["wall_s"] == 120.0
    assert res["status"] == "complete"
    stopped = {**_results([5]), "status": "stopped after seed 4"}
    assert bench.merge([_results([0]), stopped])["status"] == "stopped after seed 4"
    md = (tmp_path / "both.md").read_text()
    row = next(line for line in md.splitlines() if "| NetAdapt - matched | 4 |" in line)
    assert "s0 " in row and "s4 " in row
    assert json.loads((tmp_path / "both.json").read_text())["runs"].keys() == res["runs"].keys()
    assert (tmp_path / "both.png").stat().st_size > 0


def test_merge_refuses_other_settings_and_a_seed_twice():
    bench = _benchmark()
    with pytest.raises(ValueError, match=r"other settings \(pretrain_steps: 2400 there, 300 here\)"):
        bench.merge([_results([0], pretrain_steps=2400), _results([1], pretrain_steps=300)])
    with pytest.raises(ValueError, match="MobileNetV3Small/seed1 is in more than one"):
        bench.merge([_results([0, 1]), _results([1, 2])])


def test_edgetpu_only_needs_finished_host_runs_of_the_same_settings(tmp_path):
    """--edgetpu-only adds step 8 to results on disk: it refuses, before anything is trained, a
    missing file, other settings, and a seed whose host run is not there."""
    import json
    bench = _benchmark()
    argv = ["--quick", "--models", "MobileNetV3Small", "--edgetpu-only", "--out", str(tmp_path), "--name", "r",
            "--work", str(tmp_path / "work")]
    with pytest.raises(ValueError, match="needs the seeds to search in --edgetpu-seeds"):
        bench.main(argv)
    argv += ["--edgetpu-seeds", "0", "5"]
    with pytest.raises(ValueError, match=r"r\.json, which does not exist"):
        bench.main(argv)
    res = _results([0])
    (tmp_path / "r.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match="no finished host run of MobileNetV3Small/seed5"):
        bench.main(argv)
    res["config"]["step"] = 0.1
    (tmp_path / "r.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match=r"other settings \(step: 0.1 there, 0.15 here\)"):
        bench.main(argv)
    assert not (tmp_path / "work").exists()


def test_edgetpu_only_needs_the_host_models_and_leaves_results_alone(tmp_path):
    """--edgetpu-only refuses, before any work, a missing --work or one without the host run's
    models (it used to train nothing, fail loading them, and write the error into the finished
    results)."""
    import json
    bench = _benchmark()
    res = _results([0])
    res["runs"]["MobileNetV3Small/seed9"] = {"model": "MobileNetV3Small", "seed": 9, "errors": ["run_model: ..."]}
    (tmp_path / "r.json").write_text(json.dumps(res))       # another seed's run failed: not in the way
    before = (tmp_path / "r.json").read_bytes()
    argv = ["--quick", "--models", "MobileNetV3Small", "--edgetpu-only", "--edgetpu-seeds", "0",
            "--out", str(tmp_path), "--name", "r"]
    with pytest.raises(ValueError, match="needs --work"):
        bench.main(argv)
    (tmp_path / "work" / "MobileNetV3Small_seed0").mkdir(parents=True)
    (tmp_path / "work" / "MobileNetV3Small_seed0" / "parent.keras").write_bytes(b"")
    with pytest.raises(ValueError, match=r"lacks the host run's models: .*netadapt_host.model\.keras, .*matched_k\d+\.keras"):
        bench.main(argv + ["--work", str(tmp_path / "work")])
    assert (tmp_path / "r.json").read_bytes() == before


def test_merge_says_when_seeds_were_timed_with_different_clocks():
    """Results made before the CPU-time clock have no "clock": merged with newer ones, the merged
    results name each clock and its runs instead of mixing them silently."""
    bench = _benchmark()
    old, new = _results([0]), {**_results([3]), "clock": bench.CLOCK}
    res = bench.merge([old, new])
    assert res["notes"][-1] == (f"latencies timed with different clocks: {bench.UNKNOWN_CLOCK}: MobileNetV3Small/seed0; "
                                f"{bench.CLOCK}: MobileNetV3Small/seed3")
    assert [r["clock"] for r in res["runs"].values()] == [bench.UNKNOWN_CLOCK, bench.CLOCK]
    assert bench.merge([new, {**_results([4]), "clock": bench.CLOCK}])["clock"] == bench.CLOCK
    again = bench.merge([res, {**_results([5]), "clock": bench.CLOCK}])      # a merged file merged again
    assert again["notes"][-1] == (f"latencies timed with different clocks: {bench.UNKNOWN_CLOCK}: MobileNetV3Small/seed0; "
                                  f"{bench.CLOCK}: MobileNetV3Small/seed3, MobileNetV3Small/seed5"), again["notes"]
    assert sum(n.startswith(bench.MIXED) for n in again["notes"]) == 1


def test_markdown_states_each_runs_parent_accuracy_clock_load_and_stage_times():
    """Per run, the markdown gives the parent's accuracy in the main table, and the latency clock,
    the load at timing, the prediction error and each stage's wall time in the conditions table
    (a run without its own clock takes the results')."""
    bench = _benchmark()
    res = {**_results([0]), "clock": bench.CLOCK}
    r = res["runs"]["MobileNetV3Small/seed0"]
    r["parent"]["accuracy"], r["timing"]["load1"] = 0.6543, 3.31
    r["netadapt"]["wall_s"], r["wall_s"] = 1200.0, 1800.0
    lines = bench.render(res).splitlines()
    main = next(line for line in lines if line.startswith("| MobileNetV3Small | 0 | 65.43 | "))
    assert main.count("|") == lines[lines.index(main) - 1].count("|")        # as many cells as the header
    cond = next(line for line in lines if line.startswith("| MobileNetV3Small | 0 | ")
                and bench.CLOCK in line).strip("| ").split(" | ")
    header = lines[lines.index(next(line for line in lines if bench.CLOCK in line)) - 2].strip("| ").split(" | ")
    cells = dict(zip(header, cond))
    assert (cells["clock"], cells["load (1 min) at timing"], cells["NetAdapt"], cells["total"]) == \
        (bench.CLOCK, "3.3", "20", "30"), cells

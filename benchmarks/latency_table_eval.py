"""Latency lookup table vs measured whole-model LiteRT latency over package models.

    python benchmarks/latency_table_eval.py [--threads 1] [--models ...] [--runs 30] [--fresh]

Measures each distinct block once, as the library's table does (`LatencyTable.measure_model`:
each model's blocks timed in turn, the median of the runs), predicts every model as the sum of
its blocks, measures the whole models (alternating bursts, the median of the runs), and reports
Spearman rank correlation and mean absolute % error. Writes results/lut_t{threads}.json (the
table) and results/lut_eval.json. `time_blob` is the benchmarks' timer of one file (any statistic).
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from _setup import Run  # noqa: E402
DEFAULT = ["MobileNetV3Small", "MobileNetV3Large", "MobileNetV4ConvS", "MobileNetV4ConvM",
           "MobileNetV4HybridM", "MobileOneS0", "MobileOneS1", "EfficientFormerL1"]


def _stat(times, stat):
    return float(np.median(times) if stat == "median" else np.quantile(times, 0.2))


def _interpreter(blob, threads):
    from keras_mobile.analysis.latency_timing import open_for_timing
    return open_for_timing(blob, threads)


def time_blob(blob, threads, runs, stat, warmup=3):
    """Seconds per invoke of a .tflite (bytes) by `stat` over `runs` invokes (the package's clock:
    CPU time at one thread, `latency_timing.invoke_clock`)."""
    from keras_mobile.analysis.latency_timing import invoke_times
    return _stat(invoke_times(_interpreter(blob, threads).invoke, threads, runs, warmup), stat)


def measure_models(models, threads, runs, stat="median", passes=3):
    """Whole-model seconds. Each model runs in back-to-back bursts (warm caches; its blocks are timed
    in turn, table format 2), and the bursts of all models alternate over `passes` sweeps (the same load for each)."""
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.analysis.latency_timing import invoke_times
    its = {m.name: _interpreter(lt.to_tflite(m), threads) for m in models}
    ts = {n: [] for n in its}
    for _ in range(passes):
        for n, it in its.items():
            ts[n] += invoke_times(it.invoke, threads, max(1, runs // passes), warmup=2)
    return {n: _stat(v, stat) for n, v in ts.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=DEFAULT)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--fresh", action="store_true", help="re-measure every block (default: reuse the saved table)")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    a = p.parse_args(argv)
    run = Run("latency_table_eval.py", argv)
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.applications.registry import get_model
    lut_path = os.path.join(a.out, f"lut_t{a.threads}.json")
    table = lt.LatencyTable(num_threads=a.threads) if a.fresh else lt.LatencyTable.load_or_new(lut_path, a.threads)
    models = []
    for n in a.models:
        m = get_model(n)(weights=None)
        if n.startswith("MobileOne"):
            m = keras_mobile.reparameterize(m)   # deployed form
        table.measure_model(m, runs=a.runs, progress=True)
        models.append(m)
    measured = measure_models(models, a.threads, a.runs)
    pred = {m.name: table.predict(m) for m in models}
    names = list(pred)
    res = {"models": {n: {"predicted_ms": pred[n] * 1e3, "measured_ms": measured[n] * 1e3,
                          "error_pct": 100 * (pred[n] / measured[n] - 1)} for n in names},
           "spearman": lt.spearman([pred[n] for n in names], [measured[n] for n in names]),
           "mape_pct": lt.mape([pred[n] for n in names], [measured[n] for n in names]),
           "num_threads": a.threads, "statistic": "median", "runs": a.runs, "entries": len(table.entries),
           **run.record()}
    os.makedirs(a.out, exist_ok=True)
    table.save(lut_path)
    with open(os.path.join(a.out, "lut_eval.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("| model | LUT predicted ms | measured ms | error |\n|---|---:|---:|---:|")
    for n, d in res["models"].items():
        print(f"| {n} | {d['predicted_ms']:.2f} | {d['measured_ms']:.2f} | {d['error_pct']:+.1f}% |")
    print(f"\nSpearman {res['spearman']:.3f}, MAPE {res['mape_pct']:.1f}% over {len(names)} models, "
          f"{res['entries']} distinct blocks, {a.threads} thread(s), {res['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()

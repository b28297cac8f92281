"""Latency lookup table vs measured whole-model LiteRT latency over package models.

    python benchmarks/latency_table_eval.py [--threads 1] [--models ...] [--runs 10]

Measures each distinct block once (keras_mobile.analysis.latency_table), predicts every model
as the sum of its blocks, measures the whole model, and reports Spearman rank correlation and
mean absolute % error. Writes results/lut_t{threads}.json (the table) and results/lut_eval.json.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
DEFAULT = ["MobileNetV3Small", "MobileNetV3Large", "MobileNetV4ConvS", "MobileNetV4ConvM",
           "MobileNetV4HybridM", "MobileOneS0", "EfficientFormerL1"]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="*", default=DEFAULT)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    a = p.parse_args(argv)
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.analysis.registry import get
    lut_path = os.path.join(a.out, f"lut_t{a.threads}.json")
    table = lt.LatencyTable.load_or_new(lut_path, num_threads=a.threads)
    models = []
    for n in a.models:
        m = get(n)(weights=None)
        if n.startswith("MobileOne"):
            m = keras_mobile.reparameterize(m)   # deployed form
        models.append(m)
    res = lt.evaluate(models, table, runs=a.runs)
    table.save(lut_path)
    res["entries"] = len(table.entries)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "lut_eval.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"| model | LUT predicted ms | measured ms | error |\n|---|---:|---:|---:|")
    for n, d in res["models"].items():
        print(f"| {n} | {d['predicted_ms']:.2f} | {d['measured_ms']:.2f} | {d['error_pct']:+.1f}% |")
    print(f"\nSpearman {res['spearman']:.3f}, MAPE {res['mape_pct']:.1f}% over {len(res['models'])} models, "
          f"{res['entries']} distinct blocks, {a.threads} thread(s)")


if __name__ == "__main__":
    main()

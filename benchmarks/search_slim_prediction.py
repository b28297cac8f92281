"""Does latency-driven slimming land where it predicts? Predicted vs measured speed-up of slimmed models.

    python benchmarks/search_slim_prediction.py [--models MobileNetV3Small MobileNetV4ConvS]
        [--budgets 0.8 0.65] [--size 64] [--rounds 300] [--table PATH]

`search.slim` picks blocks (UIB variants, IR kernels, identities, Meta4D/Meta3D) by the host
table's predicted latency (LiteRT float32, 1 thread, each candidate row timed alone, the table
calibrated on the parent measured whole). For each model (random weights: float32 timing does
not depend on them; EfficientFormer at its one size, 224) and each budget (a fraction of the
parent's predicted latency), a short supernet training (random labels: the picks are then
arbitrary, which is what a latency check wants) and slimming give a model; the parent and the
slimmed models are timed in interleaved rounds of single invokes (`search_pareto.timed`), ratio
= median of per-round ratios, so machine load cancels. Writes results/search_slim_prediction.json
and .md.
"""
import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from _setup import Run, run_line, save_results  # noqa: E402
from search_pareto import median_ms, ratio, timed  # noqa: E402  (interleaved LiteRT timing)


def run_model(name, a, src):
    """{"parent": ..., "slimmed": [...]} for one model: predicted and measured ms and ratios."""
    import keras
    import numpy as np

    from keras_mobile.analysis.latency_table import to_tflite
    from keras_mobile.applications.registry import entry
    from keras_mobile.search import slim
    e = entry(name)
    size = e.spec().fixed_size or a.size
    keras.utils.set_random_seed(0)
    parent = e.constructor(weights=None, input_shape=(size, size, 3), classes=10)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4 * a.batch_size, size, size, 3)).astype("float32")
    data = (x, rng.integers(0, 10, len(x)))
    src.calibrate(parent)
    start = src.predict_ms(parent)
    models, rows = {"parent": parent}, []
    for b in a.budgets:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as out:
            m = slim(parent, b * start, data, data, latency=src, steps=a.steps, finetune_epochs=0, out_dir=out,
                     batch_size=a.batch_size, calibrate=False)
            with open(os.path.join(out, "slim.json")) as f:
                log = json.load(f)
        models[f"x{b}"] = m
        rows.append({"budget": b, "budget_ms": b * start, "predicted_ms": log["predicted_ms"],
                     "predicted_ratio": log["predicted_ms"] / start, "slimming_steps": len(log["steps"]),
                     "rows_changed": sum(c["pick"] != 0 for c in log["choices"]), "rows": len(log["choices"]),
                     "picks": [{"row": c["row"], **c["candidates"][c["pick"]]} for c in log["choices"]
                               if c["pick"] != 0], "search_s": time.time() - t0})
    ts = timed({k: to_tflite(m, "float32") for k, m in models.items()}, a.rounds)
    med = median_ms(ts)
    for r in rows:
        k = f"x{r['budget']}"
        r.update(measured_ms=med[k], measured_ratio=ratio(ts, k, "parent"))
        r["diff"] = r["measured_ratio"] - r["predicted_ratio"]
    return {"size": size, "rounds": len(ts["parent"]),
            "parent": {"predicted_ms": start, "measured_ms": med["parent"]}, "slimmed": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["MobileNetV3Small", "MobileNetV4ConvS"])
    p.add_argument("--budgets", nargs="+", type=float, default=[0.8, 0.65])
    p.add_argument("--size", type=int, default=64, help="input size (EfficientFormer: always 224)")
    p.add_argument("--steps", type=int, default=10, help="supernet training batches")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=300, help="interleaved timing rounds (single invokes)")
    p.add_argument("--table", default=None, help="host float32 table JSON (default: the package's cache)")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    a = p.parse_args(argv)
    from keras_mobile.search import get_source
    run = Run("search_slim_prediction.py", argv)
    src = get_source("host", cache_path=a.table)
    res = {"source": src.name, "budgets": a.budgets, "steps": a.steps,
           "models": {name: run_model(name, a, src) for name in a.models}}
    diffs = [abs(r["diff"]) for m in res["models"].values() for r in m["slimmed"]]
    res.update(max_abs_diff=max(diffs), **run.record())
    save_results(a.out, "search_slim_prediction", res, render(res))
    return res


def render(res):
    lines = ["# Latency-driven slimming: predicted vs measured speed-up", "",
             f"Random-weight parents, slimmed by `search.slim` to each budget (a fraction of the parent's predicted "
             f"latency) with the `{res['source']}` source (LiteRT float32, 1 thread, block table calibrated on the "
             f"parent), {res['steps']} supernet steps on random labels. Measured: float32 files in interleaved rounds "
             f"of single invokes, ratio = median of per-round slimmed / parent ratios.", "",
             "| model | px | budget | predicted / parent | measured / parent | diff | rows changed | predicted ms | "
             "measured ms |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in res["models"].items():
        lines.append(f"| {name} | {m['size']} | parent | 1 | 1 | | | {m['parent']['predicted_ms']:.3f} | "
                     f"{m['parent']['measured_ms']:.3f} |")
        for r in m["slimmed"]:
            lines.append(f"| {name} | {m['size']} | {r['budget']} | {r['predicted_ratio']:.3f} | "
                         f"{r['measured_ratio']:.3f} | {r['diff']:+.3f} | {r['rows_changed']}/{r['rows']} | "
                         f"{r['predicted_ms']:.3f} | {r['measured_ms']:.3f} |")
    lines += ["", f"Largest |measured - predicted| ratio: {res['max_abs_diff']:.3f}. " + run_line(res)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

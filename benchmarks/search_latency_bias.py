"""Latency-table bias: sum of block times vs measured whole models, before/after the correction.

    python benchmarks/search_latency_bias.py [--quantization float32|int8] [--runs 10] [--rounds 5]

The table (keras_mobile.analysis.latency_table) times each block alone; the plain sum
under-predicts whole models. This script times every block slice and every whole model in the
same rounds (20th percentile of `runs` invokes each, by the package's one-thread clock: the invoke's
CPU time, so preemption on a loaded machine does not count; medians over `rounds`: a shared machine's load hits
both alike), then compares three corrections of the sum, each
evaluated leave-one-model-out (fitted on the other models, applied to the held-out one):
`scale` (a x sum), `per_block` (sum + b x blocks) and both. Writes
results/search_latency_bias_<quantization>.json.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from latency_table_eval import time_blob  # noqa: E402  (the benchmarks' LiteRT timer)
MODELS = [("MobileNetV3Small", {}), ("MobileNetV3Small", {"alpha": 0.75}), ("MobileNetV3Large", {}),
          ("MobileNetV4ConvS", {}), ("MobileOneS0", {}), ("MobileNetV3Small", {"input_shape": (160, 160, 3)}),
          ("MobileNetV4ConvS", {"input_shape": (160, 160, 3)})]


def interleaved(models, quantization, runs, rounds):
    """Per model: per-round (whole-model time, sum of its blocks' times), each the 20th percentile
    of `runs` invokes, whole model and blocks timed back to back in every round (the same load for both)."""
    from keras_mobile.analysis import latency_table as lt
    plan = {}
    for name, m in models.items():
        blocks = [lt.block_tflite(b.to_model(), quantization) for b in lt.blocks(m)]
        plan[name] = (lt.to_tflite(m, quantization), blocks)
    out = {n: [] for n in plan}
    for _ in range(rounds):
        for n, (whole, blocks) in plan.items():
            w = time_blob(whole, 1, runs, "p20")
            s = sum(time_blob(b, 1, runs, "p20") for b in blocks)
            out[n].append((w, s, len(blocks)))
    return out


def _tiny():
    import keras
    x = keras.Input(batch_shape=(1, 4))   # per-invoke overhead, as the library measures it
    return keras.Model(x, keras.layers.Dense(4)(x))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quantization", choices=("float32", "int8"), default="float32")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    a = p.parse_args(argv)
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.applications.registry import get_model
    t0 = time.time()
    overhead = lt.time_tflite(lt.block_tflite(_tiny(), a.quantization), 1, runs=200)
    models = {}
    for name, kw in MODELS:
        m = get_model(name)(weights=None, **kw)
        if name.startswith("MobileOne"):
            m = keras_mobile.reparameterize(m)
        label = name + "".join(f"_{k}={v[0] if isinstance(v, tuple) else v}" for k, v in kw.items())
        models[label] = m
    rounds = interleaved(models, a.quantization, a.runs, a.rounds)
    names = list(models)
    # medians over rounds of whole time, block sum (overhead removed per block), and their ratio
    measured = {n: float(np.median([w for w, _, _ in rounds[n]])) for n in names}
    x = {n: (float(np.median([s - k * overhead for _, s, k in rounds[n]])), rounds[n][0][2]) for n in names}
    ratio = {n: float(np.median([w / (s - k * overhead + overhead) for w, s, k in rounds[n]])) for n in names}

    def pred(c, n):
        return c["scale"] * x[n][0] + c["per_block_s"] * x[n][1] + overhead

    res = {"quantization": a.quantization, "overhead_ms": overhead * 1e3, "rounds": a.rounds, "runs": a.runs,
           "statistic": "p20 of runs per round, median over rounds",
           "clock": "thread CPU time of the invoke (one thread: latency_timing.invoke_clock)", "models": {}, "corrections": {}}
    plain = {n: pred({"scale": 1.0, "per_block_s": 0.0}, n) for n in names}
    for n in names:
        res["models"][n] = {"measured_ms": measured[n] * 1e3, "block_sum_ms": x[n][0] * 1e3, "blocks": x[n][1],
                            "plain_error_pct": 100 * (plain[n] / measured[n] - 1),
                            "median_round_ratio_whole_over_sum": ratio[n]}
    for label, terms in (("scale", ("scale",)), ("per_block", ("per_block",)), ("both", ("scale", "per_block"))):
        loo = {}
        for n in names:
            others = [o for o in names if o != n]
            c = lt.fit_correction([x[o] for o in others], [measured[o] - overhead for o in others], terms)
            loo[n] = pred(c, n)
        full = lt.fit_correction([x[o] for o in names], [measured[o] - overhead for o in names], terms)
        errs = {n: 100 * (loo[n] / measured[n] - 1) for n in names}
        res["corrections"][label] = {"fit_all": full, "loo_error_pct": errs,
                                     "loo_mape_pct": float(np.mean(np.abs(list(errs.values()))))}
    res["plain_mape_pct"] = lt.mape([plain[n] for n in names], [measured[n] for n in names])
    res["spearman_plain"] = lt.spearman([plain[n] for n in names], [measured[n] for n in names])
    res["load1_end"] = os.getloadavg()[0]
    res["wall_s"] = time.time() - t0
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"search_latency_bias_{a.quantization}.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"| model | measured ms | plain sum error | " + " | ".join(f"LOO {k}" for k in res["corrections"]) + " |")
    for n in names:
        print(f"| {n} | {measured[n] * 1e3:.2f} | {res['models'][n]['plain_error_pct']:+.1f}% | " +
              " | ".join(f"{c['loo_error_pct'][n]:+.1f}%" for c in res["corrections"].values()) + " |")
    print(f"MAPE plain {res['plain_mape_pct']:.1f}%, " +
          ", ".join(f"LOO {k} {c['loo_mape_pct']:.1f}%" for k, c in res["corrections"].items()) +
          f"; load {res['load1_end']:.1f}; {res['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()

"""Latency-table bias: sum of block times vs measured whole models, before/after the correction.

    python benchmarks/search_latency_bias.py [--quantization float32|int8] [--runs 10] [--rounds 5]

The table (keras_mobile.analysis.latency_table) times each block slice; the plain sum of the
slices timed alone (each back to back) under-predicts float32 models. This script times every whole
model and its block slices, alone and in turn (all of a model's slices invoked in model order, round
after round: `latency_timing.times_in_turn`), in the same rounds (20th percentile of `runs` invokes each, by the package's one-thread clock: the invoke's
CPU time, so preemption on a loaded machine does not count; medians over `rounds`: a shared machine's load hits
both alike), then compares three corrections of the sum, each
evaluated leave-one-model-out (fitted on the other models, applied to the held-out one):
`scale` (a x sum), `per_block` (sum + b x blocks) and both. Writes
results/search_latency_bias_<quantization>.json.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from _setup import Run, host_line, run_line, save_results  # noqa: E402
from latency_table_eval import time_blob  # noqa: E402  (the benchmarks' LiteRT timer)
MODELS = [("MobileNetV3Small", {}), ("MobileNetV3Small", {"alpha": 0.75}), ("MobileNetV3Large", {}),
          ("MobileNetV4ConvS", {}), ("MobileOneS0", {}), ("MobileNetV3Small", {"input_shape": (160, 160, 3)}),
          ("MobileNetV4ConvS", {"input_shape": (160, 160, 3)})]


def _rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024


def interleaved(models, quantization, runs, rounds):
    """Per model: per-round (whole-model time, sum of its blocks' times each timed alone, sum of
    its blocks' times timed in turn, number of blocks), each time the 20th percentile of `runs`
    invokes; the whole model and both block timings back to back in every round (the same load).
    Alone: each slice invoked `runs` times back to back (its working set stays in cache). In turn:
    all of the model's slices open at once and invoked in model order, round after round, each
    input rewritten before its invoke (`latency_timing.times_in_turn`). Also the resident memory
    the model's open slices took (MB)."""
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.analysis.latency_timing import open_for_timing, times_in_turn
    out, rss = {}, {}
    for name, m in models.items():
        whole = lt.to_tflite(m, quantization)
        blocks = [lt.block_tflite(b.to_model(), quantization) for b in lt.blocks(m)]
        before = _rss_mb()
        its = [open_for_timing(b, 1) for b in blocks]
        rss[name] = _rss_mb() - before
        out[name] = []
        for _ in range(rounds):
            w = time_blob(whole, 1, runs, "p20")
            alone = sum(time_blob(b, 1, runs, "p20") for b in blocks)
            turn = sum(float(np.quantile(t, 0.2)) for t in times_in_turn(its, 1, runs))
            out[name].append((w, alone, turn, len(blocks)))
        del its
    return out, rss


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
    run = Run("search_latency_bias.py", argv)
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.analysis.hardware import describe_host
    from keras_mobile.applications.registry import get_model
    overhead = lt.time_tflite(lt.block_tflite(_tiny(), a.quantization), 1, runs=200)
    models = {}
    for name, kw in MODELS:
        m = get_model(name)(weights=None, **kw)
        if name.startswith("MobileOne"):
            m = keras_mobile.reparameterize(m)
        label = name + "".join(f"_{k}={v[0] if isinstance(v, tuple) else v}" for k, v in kw.items())
        models[label] = m
    rounds, rss = interleaved(models, a.quantization, a.runs, a.rounds)
    names = list(models)
    # medians over rounds of whole time, block sums (overhead removed per block), and their ratios
    measured = {n: float(np.median([r[0] for r in rounds[n]])) for n in names}
    x = {n: (float(np.median([r[1] - r[3] * overhead for r in rounds[n]])), rounds[n][0][3]) for n in names}
    turn = {n: float(np.median([r[2] - r[3] * overhead for r in rounds[n]])) + overhead for n in names}
    ratio = {n: float(np.median([r[0] / (r[1] - r[3] * overhead + overhead) for r in rounds[n]])) for n in names}
    ratio_turn = {n: float(np.median([r[0] / (r[2] - r[3] * overhead + overhead) for r in rounds[n]])) for n in names}

    def pred(c, n):
        return c["scale"] * x[n][0] + c["per_block_s"] * x[n][1] + overhead

    res = {"host": describe_host(), "quantization": a.quantization, "overhead_ms": overhead * 1e3, "rounds": a.rounds, "runs": a.runs,
           "statistic": "p20 of runs per round, median over rounds",
           "clock": "thread CPU time of the invoke (one thread: latency_timing.invoke_clock)", "models": {}, "corrections": {}}
    plain = {n: pred({"scale": 1.0, "per_block_s": 0.0}, n) for n in names}
    for n in names:
        res["models"][n] = {"measured_ms": measured[n] * 1e3, "block_sum_ms": x[n][0] * 1e3, "blocks": x[n][1],
                            "plain_error_pct": 100 * (plain[n] / measured[n] - 1),
                            "median_round_ratio_whole_over_sum": ratio[n],
                            "in_turn_sum_ms": turn[n] * 1e3, "in_turn_error_pct": 100 * (turn[n] / measured[n] - 1),
                            "median_round_ratio_whole_over_in_turn_sum": ratio_turn[n],
                            "in_turn_open_slices_rss_mb": rss[n],
                            "per_round_ms": [[v * 1e3 for v in r[:3]] for r in rounds[n]]}
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
    res["in_turn_mape_pct"] = lt.mape([turn[n] for n in names], [measured[n] for n in names])
    res["spearman_in_turn"] = lt.spearman([turn[n] for n in names], [measured[n] for n in names])
    res.update(run.record())
    lines = [f"# Latency table: block sums vs whole models ({a.quantization}, random weights, one thread, CPU time)", "",
             f"Host: {host_line(res['host'])}. {run_line(res)}", "",
             "| model | measured ms | blocks | alone sum error | in-turn sum error | in-turn slices' memory MB | " +
             " | ".join(f"alone, LOO {k}" for k in res["corrections"]) + " |",
             "|---|---:|---:|---:|---:|---:|" + "---:|" * len(res["corrections"])]
    for n in names:
        r = res["models"][n]
        lines.append(f"| {n} | {r['measured_ms']:.2f} | {r['blocks']} | {r['plain_error_pct']:+.1f} % | "
                     f"{r['in_turn_error_pct']:+.1f} % | {r['in_turn_open_slices_rss_mb']:.0f} | " +
                     " | ".join(f"{c['loo_error_pct'][n]:+.1f} %" for c in res["corrections"].values()) + " |")
    lines += ["", f"MAPE: alone {res['plain_mape_pct']:.1f} %, in turn {res['in_turn_mape_pct']:.1f} %, " +
              ", ".join(f"alone with a leave-one-out fitted {k} correction {c['loo_mape_pct']:.1f} %"
                        for k, c in res["corrections"].items()) + ".", "",
              "Per round: each whole model, its block slices each timed alone (back to back), and the same slices "
              "timed in turn (all open, invoked in model order round after round, each input rewritten before its "
              "invoke: `latency_timing.times_in_turn`), 20th percentile of the runs each; medians over rounds. "
              "Block sums: the per-invoke overhead removed per slice, added once. Memory: the resident memory "
              "the model's open slices took."]
    save_results(a.out, f"search_latency_bias_{a.quantization}", res, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Does the host latency table predict the speed-up of a NetAdapt child over its parent?

    python benchmarks/search_speedup_prediction.py [--rounds 300] [--table PATH]

NetAdapt ranks children by the host table's predicted latency (`search.get_source("host")`:
LiteRT float32, 1 thread, blocks timed alone). What matters to the search is the ratio
child / parent, not absolute ms, so this compares, for MobileNetV3Small at 32 px (random
weights; float32 timing does not depend on them) and four children of its search space
(one expansion width, one residual-tied output width, every expansion halved, all widths x0.75),
the predicted ratio with the measured one: every file timed in interleaved rounds of single
invokes (`search_pareto.timed`), ratio = median of per-round ratios, so machine load cancels.
Writes results/search_speedup_prediction.json and .md. (It was a timed unit test,
`test_host_table_prediction_tracks_measured_litert_latency`: bar |measured - predicted| < 0.15.)
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from _setup import Run, run_line, save_results  # noqa: E402
from search_pareto import median_ms, ratio, timed  # noqa: E402  (interleaved LiteRT timing)

BAR = 0.15    # the former test's tolerance on |measured - predicted| speed-up ratio


def children(space):
    """{label: space} of four children of `space` (MobileNetV3Small's table)."""
    knobs = space.knobs()
    mid9 = next(k for k in knobs if k.kind == "mid" and k.rows == (9,))
    group = next(k for k in knobs if k.kind == "out" and k.rows == (8, 9, 10))
    half = space
    for k in knobs:
        if k.kind == "mid":
            half = half.set(k, max(8, space.value(k) // 16 * 8))
    return {f"mid[9] {space.value(mid9)}->288": space.set(mid9, 288),
            f"out[8-10] {space.value(group)}->48": space.set(group, 48),
            "every expansion halved": half,
            "all widths x0.75": space.scaled(0.75)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=300, help="interleaved timing rounds (single invokes)")
    p.add_argument("--table", default=None, help="host float32 table JSON (default: the package's cache)")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    a = p.parse_args(argv)
    import keras

    from keras_mobile.analysis.latency_table import to_tflite
    from keras_mobile.applications import MobileNetV3Small
    from keras_mobile.search import TableSpace, get_source
    from keras_mobile.search.inherit import inherit
    run = Run("search_speedup_prediction.py", argv)
    keras.utils.set_random_seed(0)
    parent = MobileNetV3Small(weights=None, input_shape=(a.size, a.size, 3), classes=10)
    space = TableSpace.from_model(parent)
    models = {"parent": parent}
    for label, s in children(space).items():
        models[label] = s.build().model
        inherit(parent, models[label])
    src = get_source("host", cache_path=a.table)
    predicted = {k: src.predict_ms(m) for k, m in models.items()}
    ts = timed({k: to_tflite(m, "float32") for k, m in models.items()}, a.rounds)
    med = median_ms(ts)
    rows = []
    for k in models:
        if k == "parent":
            continue
        p_ratio, m_ratio = predicted[k] / predicted["parent"], ratio(ts, k, "parent")
        rows.append({"child": k, "predicted_ms": predicted[k], "measured_ms": med[k],
                     "predicted_ratio": p_ratio, "measured_ratio": m_ratio, "diff": m_ratio - p_ratio})
    worst = max(abs(r["diff"]) for r in rows)
    res = {"model": "MobileNetV3Small", "size": a.size, "source": src.name, "rounds": len(ts["parent"]),
           "parent": {"predicted_ms": predicted["parent"], "measured_ms": med["parent"]}, "children": rows,
           "max_abs_diff": worst, "bar": BAR, "within_bar": worst < BAR, **run.record()}
    save_results(a.out, "search_speedup_prediction", res, render(res))
    return res


def render(res):
    lines = ["# Host latency table: predicted vs measured speed-up of NetAdapt children", "",
             f"{res['model']} at {res['size']} px (random weights), children of its search space with "
             f"weights inherited; source `{res['source']}` (LiteRT float32, 1 thread, block table). Measured: "
             f"float32 files in {res['rounds']} interleaved rounds of single invokes, ratio = median of "
             f"per-round child / parent ratios. Parent: predicted {res['parent']['predicted_ms']:.3f} ms, "
             f"measured {res['parent']['measured_ms']:.3f} ms (median).", "",
             "| child | predicted ms | measured ms | predicted / parent | measured / parent | diff |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in res["children"]:
        lines.append(f"| {r['child']} | {r['predicted_ms']:.3f} | {r['measured_ms']:.3f} | "
                     f"{r['predicted_ratio']:.3f} | {r['measured_ratio']:.3f} | {r['diff']:+.3f} |")
    lines += ["", f"Largest |measured - predicted| ratio: {res['max_abs_diff']:.3f} (bar {res['bar']}: "
              f"{'within' if res['within_bar'] else 'NOT within'}). " + run_line(res)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

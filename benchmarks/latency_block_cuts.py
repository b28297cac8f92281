"""Where a whole model's LiteRT time differs from the sum of its latency-table slices.

    PYTHONPATH=. python benchmarks/latency_block_cuts.py [--models MobileNetV3Small MobileNetV3Large
                                                         MobileNetV4ConvS MobileOneS0] [--rounds 5] [--runs 10]
                                                         [--quantization float32|int8]

Per model and round (one thread, CPU time of the invoke: `latency_timing.invoke_clock`; the 20th
percentile of `runs` invokes per file), all timed back to back in the same round:
- `layer_cut_sum`: the sum over slices cut at every module path (`block_of`), as the table cut
  before stem and head layers were grouped: `conv_stem.pad`, `conv_stem`, `bn1`, `act1`, ... apart;
- `table_sum`: the sum over the table's blocks (`latency_blocks.blocks`: un-indexed stem and head
  layers one block each);
- `halves_hot`: the model cut in two halves (the table's blocks split in the middle), each half
  timed back to back on its own, summed;
- `halves_alternating`: the same two halves invoked alternately (A, B, A, B: each half runs after the
  other one, as inside the whole model), each invoke timed, summed.
Reports the median over rounds of each / whole. Writes results/latency_block_cuts_<quantization>.{json,md}.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _setup import Run, host_line, run_line, save_results  # noqa: E402

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["MobileNetV3Small", "MobileNetV3Large", "MobileNetV4ConvS",
                                                   "MobileOneS0"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--quantization", choices=("float32", "int8"), default="float32")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--name", default=None, help="results/<name>.{json,md} (default latency_block_cuts_<quantization>)")
    a = p.parse_args(argv)
    a.name = a.name or f"latency_block_cuts_{a.quantization}"
    run = Run("latency_block_cuts.py", argv)
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.analysis.hardware import describe_host
    from keras_mobile.analysis.latency_blocks import Block, block_of
    from keras_mobile.analysis.latency_timing import invoke_clock, invoke_times
    from keras_mobile.applications.registry import get_model
    from keras_mobile.tflite.inspect import make_interpreter, random_inputs

    def opened(model, whole=False):
        """The whole file with float IO as deployed; slices as the table cuts them (`block_tflite`)."""
        blob = lt.to_tflite(model, a.quantization) if whole else lt.block_tflite(model, a.quantization)
        return random_inputs(make_interpreter(blob, num_threads=1))

    def p20(times):
        return float(np.quantile(times, 0.2))

    def hot(it):
        return p20(invoke_times(it.invoke, 1, a.runs))

    def joined(bs, name):
        b = Block(name)
        b.items = [x for blk in bs for x in blk.items]
        return b

    def layer_cut(bs):
        out = []
        for layer, node in (x for blk in bs for x in blk.items):
            name = block_of(layer.name)
            if not out or out[-1].name != name:
                out.append(Block(name))
            out[-1].items.append((layer, node))
        return out

    def alternating(first, second):
        clock, ta, tb = invoke_clock(1), [], []
        for r in range(a.runs + 2):
            t0 = clock()
            first.invoke()
            t1 = clock()
            second.invoke()
            t2 = clock()
            if r >= 2:
                ta.append(t1 - t0)
                tb.append(t2 - t1)
        return p20(ta) + p20(tb)

    res = {"host": describe_host(), "quantization": a.quantization, "rounds": a.rounds, "runs": a.runs, "models": {}}
    for name in a.models:
        m = get_model(name)(weights=None)
        if name.startswith("MobileOne"):
            m = keras_mobile.reparameterize(m)
        bs = lt.blocks(m)
        h = len(bs) // 2
        whole = opened(m, whole=True)
        cut = [opened(b.to_model()) for b in layer_cut(bs)]
        table = [opened(b.to_model()) for b in bs]
        halves = [opened(joined(bs[:h], "first_half").to_model()), opened(joined(bs[h:], "second_half").to_model())]
        rows = []
        for _ in range(a.rounds):
            w = hot(whole)
            rows.append({"whole_s": w, "layer_cut_sum": sum(hot(i) for i in cut) / w,
                         "table_sum": sum(hot(i) for i in table) / w, "halves_hot": sum(hot(i) for i in halves) / w,
                         "halves_alternating": alternating(*halves) / w, "load1": os.getloadavg()[0]})
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        med.update(layer_cut_slices=len(cut), table_blocks=len(bs), per_round=rows)
        res["models"][name] = med
    res.update(run.record())
    lines = [f"# Whole model vs the sum of its slices ({a.quantization}, random weights, 224 px, one thread, CPU time)", "",
             f"Host: {host_line(res['host'])}. {run_line(res)}", "",
             "| model | whole ms | layer-cut sum / whole (slices) | table sum / whole (blocks) "
             "| halves hot / whole | halves alternating / whole | load |", "|---|---:|---:|---:|---:|---:|---:|"]
    for n, r in res["models"].items():
        lines.append(f"| {n} | {r['whole_s'] * 1e3:.2f} | {r['layer_cut_sum']:.3f} ({r['layer_cut_slices']}) | "
                     f"{r['table_sum']:.3f} ({r['table_blocks']}) | {r['halves_hot']:.3f} | "
                     f"{r['halves_alternating']:.3f} | {r['load1']:.1f} |")
    lines += ["", "Medians over rounds of per-round ratios (20th percentile of the runs per file). Layer cut: "
              "stem and head layers sliced apart (`conv_stem.pad`, `bn1`, ... each a file), which times ops the "
              "whole file does not run (an unfused PAD, a lone BN MUL). Halves hot vs alternating: the same two "
              "files, timed back to back vs each after the other; when alternating matches the whole model, "
              "what the table misses is each slice's working set staying in cache and TLB when it is timed "
              "alone, not a cost at the cuts."]
    save_results(a.out, a.name, res, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

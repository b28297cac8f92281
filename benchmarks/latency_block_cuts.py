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
  other one, as inside the whole model), each invoke timed, summed;
- `table_in_turn`: the table's blocks invoked in turn (`latency_timing.times_in_turn`: all slices
  open, invoked in model order round after round, each input rewritten before its invoke), summed.
Reports the median over rounds of each / whole. Writes results/latency_block_cuts_<quantization>.{json,md}.

--per-block: per block, its cost inside the whole model (the difference of the times of the prefixes
of the model ending after it and before it, each timed back to back like the whole model) vs the
block timed alone and in turn, and its weight count. Writes results/latency_block_cuts_<quantization>_per_block.{json,md}.
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
    p.add_argument("--per-block", action="store_true", help="per-block costs inside the model (prefix differences)")
    p.add_argument("--name", default=None, help="results/<name>.{json,md} (default latency_block_cuts_<quantization>"
                                                "[_per_block])")
    a = p.parse_args(argv)
    a.name = a.name or f"latency_block_cuts_{a.quantization}" + ("_per_block" if a.per_block else "")
    run = Run("latency_block_cuts.py", argv)
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.analysis.hardware import describe_host
    from keras_mobile.analysis.latency_blocks import Block, block_of
    from keras_mobile.analysis.latency_timing import invoke_times, open_for_timing, round_robin_times, times_in_turn
    from keras_mobile.applications.registry import get_model

    def opened(model, whole=False):
        """The whole file with float IO as deployed; slices as the table cuts them (`block_tflite`)."""
        blob = lt.to_tflite(model, a.quantization) if whole else lt.block_tflite(model, a.quantization)
        return open_for_timing(blob, 1)

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
        return sum(p20(t) for t in round_robin_times([first.invoke, second.invoke], 1, a.runs, warmup=2))

    def in_turn(its):
        return [p20(t) for t in times_in_turn(its, 1, a.runs)]

    res = {"host": describe_host(), "quantization": a.quantization, "rounds": a.rounds, "runs": a.runs, "models": {}}
    if a.per_block:
        return per_block(a, run, res, opened, hot, in_turn, joined)
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
                         "halves_alternating": alternating(*halves) / w, "table_in_turn": sum(in_turn(table)) / w,
                         "load1": os.getloadavg()[0]})
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        med.update(layer_cut_slices=len(cut), table_blocks=len(bs), per_round=rows)
        res["models"][name] = med
    res.update(run.record())
    lines = [f"# Whole model vs the sum of its slices ({a.quantization}, random weights, 224 px, one thread, CPU time)", "",
             f"Host: {host_line(res['host'])}. {run_line(res)}", "",
             "| model | whole ms | layer-cut sum / whole (slices) | table sum / whole (blocks) "
             "| halves hot / whole | halves alternating / whole | table sum in turn / whole | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n, r in res["models"].items():
        lines.append(f"| {n} | {r['whole_s'] * 1e3:.2f} | {r['layer_cut_sum']:.3f} ({r['layer_cut_slices']}) | "
                     f"{r['table_sum']:.3f} ({r['table_blocks']}) | {r['halves_hot']:.3f} | "
                     f"{r['halves_alternating']:.3f} | {r.get('table_in_turn', float('nan')):.3f} | {r['load1']:.1f} |")
    lines += ["", "Medians over rounds of per-round ratios (20th percentile of the runs per file). Layer cut: "
              "stem and head layers sliced apart (`conv_stem.pad`, `bn1`, ... each a file), which times ops the "
              "whole file does not run (an unfused PAD, a lone BN MUL). Halves hot vs alternating: the same two "
              "files, timed back to back vs each after the other; when alternating matches the whole model, "
              "what the table misses is each slice's working set staying in cache and TLB when it is timed "
              "alone, not a cost at the cuts. Table sum in turn: the table's slices each invoked after all the "
              "others (their weights and buffers evicted): over the whole model, as each slice's buffers are "
              "its own and cold, where the whole model reuses one arena (see the _per_block results)."]
    save_results(a.out, a.name, res, "\n".join(lines) + "\n")


def per_block(a, run, res, opened, hot, in_turn, joined):
    """Each block's cost inside the whole model (prefix differences) vs alone and in turn."""
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.applications.registry import get_model
    for name in a.models:
        m = get_model(name)(weights=None)
        if name.startswith("MobileOne"):
            m = keras_mobile.reparameterize(m)
        bs = lt.blocks(m)
        prefixes = [opened(joined(bs[:k + 1], f"prefix{k}").to_model()) for k in range(len(bs))]
        table = [opened(b.to_model()) for b in bs]
        rounds = [([hot(i) for i in prefixes], [hot(i) for i in table], in_turn(table)) for _ in range(a.rounds)]
        pre, alone, turn = (np.median(np.array([r[j] for r in rounds]), 0) for j in range(3))
        inside = np.diff(np.concatenate([[0.0], pre]))
        weights = [int(sum(np.prod(v.shape) for l, _ in b.items for v in l.weights)) for b in bs]
        res["models"][name] = {"whole_s": float(pre[-1]), "load1": os.getloadavg()[0], "blocks": [
            {"block": b.name, "inside_us": float(i * 1e6), "alone_us": float(al * 1e6), "in_turn_us": float(t * 1e6),
             "weights": w} for b, i, al, t, w in zip(bs, inside, alone, turn, weights)]}
    res.update(run.record())
    lines = [f"# Per-block cost inside the model vs the slice alone and in turn ({a.quantization}, random weights, "
             "224 px, one thread, CPU time)", "", f"Host: {host_line(res['host'])}. {run_line(res)}", "",
             "Inside = time of the prefix ending after the block - time of the prefix ending before it (each "
             "prefix file timed back to back, like the whole model; the last prefix is the whole model, with the slices' IO type); noisy for "
             "small blocks, it can go negative. Medians over rounds of the 20th percentile of the runs.", ""]
    for n, r in res["models"].items():
        b = r["blocks"]
        tot = {k: sum(x[k] for x in b) for k in ("inside_us", "alone_us", "in_turn_us")}
        lines += [f"## {n}: whole {r['whole_s'] * 1e3:.2f} ms, alone sum / whole {tot['alone_us'] / tot['inside_us']:.3f}, "
                  f"in turn sum / whole {tot['in_turn_us'] / tot['inside_us']:.3f} (load {r['load1']:.1f})", "",
                  "| block | weights | inside us | alone us (/ inside) | in turn us (/ inside) |", "|---|---:|---:|---:|---:|"]
        for x in b:
            rel = (lambda v: f"{v / x['inside_us']:.2f}" if x["inside_us"] > 0 else "-")
            lines.append(f"| {x['block']} | {x['weights']:,} | {x['inside_us']:.1f} | {x['alone_us']:.1f} "
                         f"({rel(x['alone_us'])}) | {x['in_turn_us']:.1f} ({rel(x['in_turn_us'])}) |")
        lines.append("")
    save_results(a.out, a.name, res, "\n".join(lines))


if __name__ == "__main__":
    main()

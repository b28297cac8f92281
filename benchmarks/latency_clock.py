"""Wall time vs CPU time of one-thread LiteRT invokes on a loaded machine: whole models vs their blocks.

    PYTHONPATH=. python benchmarks/latency_clock.py [--models MobileNetV3Large MobileOneS0 MobileNetV3Small]
                                                    [--rounds 3] [--runs 20]

The latency table times each block alone and sums them. On a shared machine the OS preempts an
invoke longer than its time slice far more often than a 0.1 ms block, so with wall time the whole
model looks slower than its blocks' sum by a factor that grows with the load: not a cost of the
model. This script times every whole model and every block under both clocks in the same rounds
(wall time and the calling thread's CPU time of the same invokes, medians of `runs`) and reports per model
the median over rounds of whole / block sum under each clock and the whole model's wall / CPU.
Writes results/<--name>.{json,md}. To see the effect, load the machine beyond its cores (other jobs, or
`for i in 1 2 3; do python -c 'while 1: pass' & done`); on an idle machine the clocks agree.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _setup import Run, host_line, run_line, save_results  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["MobileNetV3Large", "MobileOneS0", "MobileNetV3Small"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--name", default="latency_clock", help="results/<name>.{json,md}")
    a = p.parse_args(argv)
    run = Run("latency_clock.py", argv)
    import keras_mobile
    from keras_mobile.analysis import latency_table as lt
    from keras_mobile.analysis.hardware import describe_host
    from keras_mobile.applications.registry import get_model
    from keras_mobile.tflite.inspect import make_interpreter, random_inputs

    def timed(blob, runs):
        """(wall, CPU) medians over the same invokes (no statistic differs between the clocks)."""
        it = random_inputs(make_interpreter(blob, num_threads=1))
        for _ in range(3):
            it.invoke()
        wall, cpu = [], []
        for _ in range(runs):
            w0, c0 = time.perf_counter(), time.thread_time()
            it.invoke()
            wall.append(time.perf_counter() - w0)
            cpu.append(time.thread_time() - c0)
        return float(np.median(wall)), float(np.median(cpu))

    res = {"host": describe_host(), "rounds": a.rounds, "runs": a.runs, "models": {}}
    for name in a.models:
        m = get_model(name)(weights=None)
        if name.startswith("MobileOne"):
            m = keras_mobile.reparameterize(m)
        whole, blocks = lt.to_tflite(m), [lt.to_tflite(b.to_model()) for b in lt.blocks(m)]
        rows = []
        for _ in range(a.rounds):
            w = timed(whole, a.runs)
            parts = [timed(b, max(3, a.runs // 2)) for b in blocks]
            rows.append({"whole_wall_s": w[0], "whole_cpu_s": w[1],
                         "sum_wall_s": sum(x[0] for x in parts), "sum_cpu_s": sum(x[1] for x in parts)})
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        med.update(
            whole_over_sum_wall=float(np.median([r["whole_wall_s"] / r["sum_wall_s"] for r in rows])),
            whole_over_sum_cpu=float(np.median([r["whole_cpu_s"] / r["sum_cpu_s"] for r in rows])),
            whole_wall_over_cpu=float(np.median([r["whole_wall_s"] / r["whole_cpu_s"] for r in rows])),
            blocks=len(blocks), per_round=rows)
        res["models"][name] = med
    res.update(run.record())
    lines = ["# Wall time vs CPU time of one-thread LiteRT invokes (float32, random weights, 224 px)", "",
             f"Host: {host_line(res['host'])}. {run_line(res)}", "",
             "| model | whole wall ms | whole CPU ms | whole / block sum (wall) | whole / block sum (CPU) "
             "| whole wall / CPU |", "|---|---:|---:|---:|---:|---:|"]
    for n, r in res["models"].items():
        lines.append(f"| {n} | {r['whole_wall_s'] * 1e3:.2f} | {r['whole_cpu_s'] * 1e3:.2f} | "
                     f"{r['whole_over_sum_wall']:.2f} | {r['whole_over_sum_cpu']:.2f} | {r['whole_wall_over_cpu']:.2f} |")
    lines += ["", "Medians over rounds of per-round ratios. Where whole wall / CPU is far above 1 the OS took "
              "the core away during the invoke (load above the core count); the CPU-time ratio is the one the "
              "latency table models (`latency_timing.invoke_clock`)."]
    save_results(a.out, a.name, res, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""QAT export forms of hard-swish: one TFLite HARD_SWISH op ("native") vs integer ADD+RELU6/MUL
("mul", quantize_model's default), int8 LiteRT latency at batch 1.

    python benchmarks/qat_hard_swish.py                     # MobileNetV3Small and Large, 224 px
    python benchmarks/qat_hard_swish.py --models MobileNetV3Small --threads 1 2

Random weights and calibration (latency does not depend on them). Both files of a model are
timed in interleaved rounds in one process; the ratio is the median of per-round mul/native
time ratios. Writes results/qat_hard_swish.json and .md.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import write_result  # noqa: E402

import bench_workers  # noqa: E402
from keras_mobile.analysis.hardware import describe_host  # noqa: E402


def measure(name, threads, rounds, workdir):
    import keras_mobile
    from keras_mobile.tflite import export, quantize_model

    model = getattr(keras_mobile, name)(weights=None)
    size = model.inputs[0].shape[1]
    calib = np.random.default_rng(0).uniform(0, 255, (32, size, size, 3)).astype("float32")
    files, ops = {}, {}
    for mode in ("native", "mul"):
        qat = quantize_model(model, calibration_data=calib, calibration_steps=32, hard_swish=mode)
        files[mode] = os.path.join(workdir, f"{name}_{mode}.tflite")
        report = export(qat, files[mode], "int8")
        assert report.fully_integer, report.float_ops
        ops[mode] = {"total": sum(report.ops.values()), "HARD_SWISH": report.ops.get("HARD_SWISH", 0),
                     "MUL": report.ops.get("MUL", 0), "ADD": report.ops.get("ADD", 0)}
    blobs = {mode: open(path, "rb").read() for mode, path in files.items()}
    rows = []
    for t in threads:
        # bench_workers: the interleaved timer and median per-round ratio of benchmarks/run.py
        fns = {mode: bench_workers._interpreter(blob, t).invoke for mode, blob in blobs.items()}
        times = bench_workers.interleaved(fns, runs=rounds, warmup=5, budget=float("inf"), min_runs=rounds)
        rows.append({"model": name, "input": size, "threads": t,
                     "ratio_mul_over_native": bench_workers.ratio(times["mul"], times["native"]),
                     **{f"{m}_ms": bench_workers.summary(v, 1)["ms"] for m, v in times.items()}})
        print(rows[-1], flush=True)
    return {"model": name, "ops": ops, "rows": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["MobileNetV3Small", "MobileNetV3Large"])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--out", default=os.path.join(HERE, "results", "qat_hard_swish"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        results = [measure(m, args.threads, args.rounds, workdir) for m in args.models]
    r = {**describe_host(),
         "date": time.strftime("%Y-%m-%d"), "results": results}
    lines = ["# QAT hard-swish export: HARD_SWISH op (native) vs ADD+RELU6/MUL (mul), int8 LiteRT, batch 1", "",
             "| model | input | threads | native ms | mul ms | mul / native | ops native -> mul |",
             "|---|---|---:|---:|---:|---:|---|"]
    for res in results:
        o = res["ops"]
        for row in res["rows"]:
            lines.append(f"| {row['model']} | {row['input']} | {row['threads']} | {row['native_ms']:.2f} | "
                         f"{row['mul_ms']:.2f} | {row['ratio_mul_over_native']:.3f} | "
                         f"{o['native']['total']} ({o['native']['HARD_SWISH']} HARD_SWISH) -> {o['mul']['total']} |")
    write_result(args.out, r, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

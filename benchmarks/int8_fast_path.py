"""Default int8 export vs the converter's own int8 graph vs float32: LiteRT latency and XNNPACK
partitions at batch 1.

    python benchmarks/int8_fast_path.py                          # the conv models, 224 px
    python benchmarks/int8_fast_path.py --models MobileNetV3Small MobileOneS0[fused] --rounds 60
    python benchmarks/int8_fast_path.py --models heads attention --out results/int8_fast_path_heads

Per model (random weights; BatchNorm statistics set from random pixels with
`representative.set_bn_statistics` so activations have a trained net's unit scale, which
int8 ranges and XNNPACK's ADD scale check depend on): three files, float32 (`export`),
"converter" int8 (TFLiteConverter's graph as it comes: HARD_SWISH ops, int8 SOFTMAX tail) and
"default" int8 (`export(..., "int8")`: hard-swish as MUL/ADD+RELU6/MUL, softmax on the
dequantized logits). The three are timed in interleaved rounds per thread count
(bench_workers.interleaved) by `latency_timing.invoke_clock` (1 thread: the invoke's CPU time, so
preemption by other jobs does not count; 2 threads: wall time); int8/fp32 is the median of
per-round ratios. Partitions and ops
left outside XNNPACK come from keras_mobile.tflite.inspect.xnnpack_partitions. Writes
results/int8_fast_path.json and .md after every model.

Heads are named `SSDLite/<backbone>` and `LRASPP/<backbone>` (their default input sizes; the
detector without its post-processing custom op, which XNNPACK never runs); they are exported
through their own `export_tflite` and have no "converter" file. `--models heads` / `attention`
expand to the sets below.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import bench_models  # noqa: E402
from _setup import Run, host_line, run_line, write_result  # noqa: E402
from keras_mobile.analysis.hardware import describe_host  # noqa: E402
import bench_workers  # noqa: E402
from keras_mobile.analysis.latency_timing import invoke_clock  # noqa: E402

CONV_MODELS = ["MobileNetV3Small", "MobileNetV4ConvS", "MobileOneS0[fused]", "MobileNetV3Large",
               "MobileNetV3Small[minimal]", "MobileNetV3Large[minimal]", "MobileNetV4ConvM", "MobileOneS1[fused]",
               "MobileOneS2[fused]", "MobileNetV4ConvL", "MobileOneS3[fused]", "MobileOneS4[fused]"]

HEAD_MODELS = ["SSDLite/MobileNetV4ConvS", "SSDLite/MobileNetV3Large", "LRASPP/MobileNetV3Large",
               "LRASPP/MobileNetV4ConvS"]
ATTENTION_MODELS = ["MobileNetV4HybridM", "EfficientFormerL1", "EfficientFormerL3", "MobileNetV4HybridL",
                    "EfficientFormerL7"]
SETS = {"conv": CONV_MODELS, "heads": HEAD_MODELS, "attention": ATTENTION_MODELS}
PREPROCESSING = {True: " Classifiers with their 'preprocessing' layer (raw [0, 255] pixels in, as users build them).",
                 False: " Classifiers without their 'preprocessing' layer (normalised input, as bench_models builds them)."}


def head_files(name, workdir, calib_n):
    """fp32 and default-int8 files of a head model `SSDLite/<backbone>` or `LRASPP/<backbone>`."""
    import keras_mobile.heads as heads
    from keras_mobile.tflite.representative import set_bn_statistics
    kind, backbone = name.split("/")
    model = getattr(heads, kind)(backbone)
    size = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(0).uniform(0, 255, (calib_n,) + size).astype("float32")
    set_bn_statistics(model, x[:8])
    extra = {"postprocess_op": False} if kind == "SSDLite" else {}
    paths = {q: os.path.join(workdir, f"{q}.tflite") for q in ("fp32", "default")}
    model.export_tflite(paths["fp32"], progress=False, **extra)
    report = model.export_tflite(paths["default"], "int8", representative_data=x,
                                 num_calibration_steps=calib_n, progress=False, **extra)
    return paths, size, report


def files(name, workdir, calib_n, dynamic=False, preprocessing=False):
    from keras_mobile.tflite import export
    from keras_mobile.files import write_atomic
    from keras_mobile.tflite.export import converter_for
    from keras_mobile.tflite.inspect import xnnpack_partitions
    from keras_mobile.tflite.representative import set_bn_statistics
    if "/" in name:
        paths, size, report = head_files(name, workdir, calib_n)
    else:
        model = bench_models.build(name, include_preprocessing=preprocessing)
        size = tuple(model.inputs[0].shape[1:])
        x = np.random.default_rng(0).uniform(0, 255, (calib_n,) + size).astype("float32")
        set_bn_statistics(model, x[:8])
        paths = {q: os.path.join(workdir, f"{q}.tflite") for q in ("fp32", "converter", "default")}
        export(model, paths["fp32"], progress=False)
        write_atomic(paths["converter"], converter_for(model, "int8", x, "uint8", "float32", calib_n,
                                                       progress=False).convert())
        report = export(model, paths["default"], "int8", representative_data=x, num_calibration_steps=calib_n,
                        progress=False)
        if dynamic:         # int8 weights, activations quantized per inference (benchmarks/int8_levers.py)
            paths["dynamic"] = os.path.join(workdir, "dynamic.tflite")
            export(model, paths["dynamic"], "dynamic", progress=False)
    info = {"input": list(size), "lowering": report.extra.get("lowering"),
            "float_islands": report.extra.get("float_islands", [])}
    for q, p in paths.items():
        parts, outside = xnnpack_partitions(p)
        info[q] = {"partitions": parts, "undelegated": [op for _, op in outside], "kib": os.path.getsize(p) / 1024}
    return paths, info


def measure(name, threads, rounds, calib_n, dynamic=False, preprocessing=False):
    with tempfile.TemporaryDirectory() as workdir:
        paths, info = files(name, workdir, calib_n, dynamic, preprocessing)
        blobs = {q: open(p, "rb").read() for q, p in paths.items()}
    info["timing"] = {}
    for t in threads:
        fns = {q: bench_workers._interpreter(b, t).invoke for q, b in blobs.items()}
        load = os.getloadavg()[0]
        times = bench_workers.interleaved(fns, runs=rounds, warmup=5, budget=float("inf"), min_runs=rounds,
                                          clock=invoke_clock(t))
        info["timing"][f"t{t}"] = {
            "load1": load, "clock": "cpu" if t == 1 else "wall",
            **{f"{q}_ms": bench_workers.summary(v, 1)["ms"] for q, v in times.items()},
            "converter_over_fp32": (bench_workers.ratio(times["converter"], times["fp32"])
                                    if "converter" in times else None),
            "default_over_fp32": bench_workers.ratio(times["default"], times["fp32"]),
            **({"dynamic_over_fp32": bench_workers.ratio(times["dynamic"], times["fp32"])} if "dynamic" in times else {})}
    return info


def render(r):
    lines = ["# int8 fast path: default int8 export vs the converter's int8 graph vs float32 (LiteRT, batch 1)", "",
             f"{host_line(r)}, shared with other jobs (1-min load per row).{models_line(r)} "
             f"Random weights with "
             f"BatchNorm statistics from random pixels. Ratios: medians of per-round ratios, files timed interleaved "
             f"(clock: {clocks(r)}).", "",
             "| model | input | threads | load | fp32 ms | converter int8 / fp32 | default int8 / fp32 | partitions converter -> default | left outside XNNPACK (default) |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    islands, dynamic = [], []
    for name, m in r["models"].items():
        if "error" in m:
            lines.append(f"| {name} | | | | | | | error: {m['error']} | |")
            continue
        for t, row in m["timing"].items():
            conv = row["converter_over_fp32"]
            conv_parts = m["converter"]["partitions"] if "converter" in m else "-"
            lines.append(f"| {name} | {m['input'][0]} | {t[1:]} | {row['load1']:.1f} | {row['fp32_ms']:.2f} | "
                         f"{'-' if conv is None else f'{conv:.3f}'} | {row['default_over_fp32']:.3f} | "
                         f"{conv_parts} -> {m['default']['partitions']} | "
                         f"{', '.join(m['default']['undelegated']) or '-'} |")
        if m.get("float_islands"):
            islands.append(f"- {name}: {island_kinds(m['float_islands'])}")
        dynamic += [f"- {name}, {t[1:]} thread(s): dynamic / fp32 {row['dynamic_over_fp32']:.3f} ({m['dynamic']['partitions']} "
                    f"partitions; outside XNNPACK: {', '.join(f'{op} x{n}' for op, n in Counter(m['dynamic']['undelegated']).items()) or '-'})"
                    for t, row in m["timing"].items() if "dynamic_over_fp32" in row]
    if "wall_s" in r:           # runs before the run was recorded have only their command and date
        lines += ["", run_line(r)]
    if islands:
        lines += ["", "Float islands of the default file (int8 ops XNNPACK refuses, run as DEQUANTIZE -> float op -> "
                  "QUANTIZE inside its partition; `keras_mobile/tflite/float_islands.py`):", ""] + islands
    if dynamic:
        lines += ["", "`export(..., 'dynamic')` (int8 weights, activations quantized per inference; not a full-integer "
                  "file), timed in the same rounds:", ""] + dynamic
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=CONV_MODELS)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--calibration", type=int, default=16)
    p.add_argument("--dynamic", action="store_true",
                   help="also time export(..., 'dynamic') (int8 weights, float activations)")
    p.add_argument("--preprocessing", action="store_true",
                   help="conv models as users build them: with the 'preprocessing' layer (raw [0, 255] pixels in); "
                        "default: without it, as the other benchmarks time them")
    p.add_argument("--out", default=os.path.join(HERE, "results", "int8_fast_path"))
    args = p.parse_args(argv)
    args.models = [m for name in args.models for m in SETS.get(name, [name])]
    run = Run("int8_fast_path.py", argv)
    r = {"command": " ".join(["int8_fast_path.py"] + (argv or sys.argv[1:])),
         **describe_host(),
         "date": time.strftime("%Y-%m-%d %H:%M"), "preprocessing": args.preprocessing, "models": {}}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    for name in args.models:
        try:
            r["models"][name] = measure(name, args.threads, args.rounds, args.calibration, args.dynamic,
                                        args.preprocessing)
        except Exception as e:  # noqa: BLE001  (keep what was measured)
            r["models"][name] = {"error": (str(e).strip().splitlines() or ["?"])[-1][:300]}
        print(json.dumps({name: r["models"][name]}), flush=True)
        r.update(run.record())
        write_result(args.out, r, render(r))
    print(render(r))


def models_line(r):
    """How the models were built (runs before --preprocessing existed say nothing)."""
    names = list(r["models"])
    line = PREPROCESSING.get(r.get("preprocessing"), "") if any("/" not in n for n in names) else ""
    return line + (" Heads with their backbone's 'preprocessing' layer." if any("/" in n for n in names) else "")


def clocks(r):
    """How the rows were timed: runs before the clock was recorded timed wall time at every thread count."""
    kinds = {f"{t[1:]} thread(s) {row.get('clock', 'wall')} time" for m in r["models"].values()
             for t, row in m.get("timing", {}).items()}
    return ", ".join(sorted(kinds)) or "-"


def island_kinds(islands):
    """'GELU x15 (XNNPACK has no int8 GELU kernel), ...' from export's float-island entries
    ('#i OP: reason'), the reasons without their per-op numbers."""
    kinds = Counter(re.sub(r" \(it is [^)]*\)|(ratios?) [-+0-9.e, ]+ ", r"\1 ", entry.split(": ", 1)[1]).strip()
                    for entry in islands)
    ops = Counter(entry.split(": ", 1)[0].split()[1] for entry in islands)
    return ", ".join(f"{op} x{ops[op]}: " + "; ".join(k for k in kinds if re.search(rf"\b{op}\b", k))
                     for op in ops)


if __name__ == "__main__":
    main()

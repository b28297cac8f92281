"""Why the default int8 (PTQ) file ran slower than the QAT one: its graph forms, timed side by side.

    PYTHONPATH=. python benchmarks/int8_ptq_forms.py                     # MobileNetV3Small/Large, 224 px
    PYTHONPATH=. python benchmarks/int8_ptq_forms.py --models MobileNetV3Small --size 48 --rounds 600

Per model (as users build it: raw [0, 255] pixels in, its 'preprocessing' Rescaling inside; random
weights, BatchNorm statistics from random pixels) these files, timed in interleaved rounds
(`bench_workers.interleaved`, clock `latency_timing.invoke_clock`: CPU time at 1 thread, wall time
at 2), each ratio the median of per-round ratios against fp32:
  * fp32: `export(model, path)`; fp32_dw: the same with the input scaling as a 1x1 depthwise conv
    (what the default int8 export does; the float32 export does not);
  * int8_before: the default int8 export with both rewrites below switched off (the form of the
    commits before 8217c62): the converter's MUL/ADD by a 3-vector for the input scaling and the
    hard-swish MULs in the converter's order, relu6(x+3) * (x/6);
  * int8_scaling: only the input scaling rewritten (`tflite/affine_as_depthwise.py`);
  * int8: the default export (also the hard-swish MULs as x * gate, `tflite/hard_swish_order.py`);
  * qat: `quantize_model(model, calibration_data=...)` exported int8, not trained (its graph forms
    are what matters here);
  * int8_io: the default export with `input_dtype="int8"`: no uint8 -> int8 input QUANTIZE, which
    the default uint8 file runs outside XNNPACK in this LiteRT wheel (the delegate takes uint8
    tensors only in builds with XNNPACK_DELEGATE_ENABLE_QU8). What a uint8 (camera bytes,
    MediaPipe) input costs.
The two rewrites are switched off by replacing the functions that make them for the run (the export
has no option for the old forms). Writes results/int8_ptq_forms.json and .md.
"""
import argparse
import contextlib
import os
import sys
import tempfile
import time
from unittest import mock

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
import bench_workers  # noqa: E402
from _setup import Run, host_line, run_line, write_result  # noqa: E402

FORMS = ("fp32", "fp32_dw", "int8_before", "int8_scaling", "int8", "qat", "int8_io")


def forms(name, size, workdir, wanted=FORMS, calib_n=16):
    """{form: .tflite bytes} of one model, for fp32 and the forms in `wanted`."""
    import keras

    import keras_mobile
    from keras_mobile.tflite import edgetpu_lowering, export, quantize_model
    from keras_mobile.tflite.affine_as_depthwise import AffineAsDepthwise, broadcast_affine
    from keras_mobile.tflite.representative import set_bn_statistics
    model = getattr(keras_mobile, name)(weights=None, input_shape=(size, size, 3))
    x = np.random.default_rng(0).uniform(0, 255, (calib_n, size, size, 3)).astype("float32")
    set_bn_statistics(model, x[:8])
    int8 = dict(representative_data=x, num_calibration_steps=calib_n, progress=False)
    old_lowering = edgetpu_lowering.lowered(model, ("pool", "hard_swish"))
    no_gate_order = mock.patch("keras_mobile.tflite.hard_swish_order.rewire", lambda graph: 0)
    old_forms = mock.patch("keras_mobile.tflite.edgetpu_lowering.xnnpack_int8_friendly", lambda m: old_lowering)
    make = {
        "fp32": lambda p: export(model, p, progress=False),
        "fp32_dw": lambda p: export(keras.models.clone_model(
            model, clone_function=lambda l: AffineAsDepthwise(l) if broadcast_affine(l) else l), p, progress=False),
        "int8": lambda p: export(model, p, "int8", **int8),
        "int8_io": lambda p: export(model, p, "int8", input_dtype="int8", **int8),
        "int8_scaling": lambda p: _patched([no_gate_order], lambda: export(model, p, "int8", **int8)),
        "int8_before": lambda p: _patched([no_gate_order, old_forms], lambda: export(model, p, "int8", **int8)),
        "qat": lambda p: export(quantize_model(model, calibration_data=x, calibration_steps=calib_n), p, "int8",
                                progress=False),
    }
    out = {}
    for form in FORMS:
        if form == "fp32" or form in wanted:
            path = os.path.join(workdir, form + ".tflite")
            make[form](path)
            out[form] = open(path, "rb").read()
    return out


def _patched(patches, fn):
    """fn() with every mock patch in `patches` applied."""
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        return fn()


def measure(name, size, threads, rounds, timed=FORMS[1:]):
    with tempfile.TemporaryDirectory() as workdir:
        blobs = forms(name, size, workdir, timed)
    out = {}
    for t in threads:
        from keras_mobile.analysis.latency_timing import invoke_clock
        fns = {f: bench_workers._interpreter(b, t).invoke for f, b in blobs.items()}
        load = os.getloadavg()[0]
        times = bench_workers.interleaved(fns, runs=rounds, warmup=10, budget=float("inf"), min_runs=rounds,
                                          clock=invoke_clock(t))
        out[f"t{t}"] = {"load1": load, "clock": "cpu" if t == 1 else "wall",
                        "ms": {f: bench_workers.summary(v, 1)["ms"] for f, v in times.items()},
                        "over_fp32": {f: bench_workers.ratio(v, times["fp32"]) for f, v in times.items()}}
    return out


def _cell(ratios, form):
    """A form's ratio, or "-" in results made before the form existed."""
    return f"{ratios[form]:.3f}" if form in ratios else "-"


def render(r):
    lines = ["# Default int8 (PTQ) graph forms vs fp32 and QAT (LiteRT + XNNPACK, batch 1)", "",
             f"{host_line(r)}, shared with other jobs. Models with their 'preprocessing' input scaling, random weights. "
             f"Each cell: time / fp32 time, median of per-round ratios ({r['rounds']} interleaved rounds; 1 thread "
             f"CPU time, 2 threads wall time); fp32 ms in its own column. Forms: see benchmarks/int8_ptq_forms.py.", "",
             "| model | px | threads | load | fp32 ms | " + " | ".join(FORMS[1:]) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * (len(FORMS) - 1)]
    for key, m in r["models"].items():
        name, size = key.rsplit("@", 1)
        for t, row in m.items():
            lines.append(f"| {name} | {size} | {t[1:]} | {row['load1']:.1f} | {row['ms']['fp32']:.2f} | "
                         + " | ".join(_cell(row["over_fp32"], f) for f in FORMS[1:]) + " |")
    return "\n".join(lines + ["", run_line(r)]) + "\n"


def main(argv=None):
    from keras_mobile.analysis.hardware import describe_host
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["MobileNetV3Small", "MobileNetV3Large"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--forms", nargs="+", choices=FORMS[1:], default=list(FORMS[1:]),
                   help="forms to time against fp32 (default: all)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "int8_ptq_forms"))
    args = p.parse_args(argv)
    run = Run("int8_ptq_forms.py", argv)
    r = {**describe_host(), "date": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds, "models": {}}
    for name in args.models:
        r["models"][f"{name}@{args.size}"] = measure(name, args.size, args.threads, args.rounds, args.forms)
        r.update(run.record())
        write_result(args.out, r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()

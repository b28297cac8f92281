"""Which lever lifts a trained model's default int8 agreement with Keras to 99 %, and at what speed?

    python benchmarks/ptq_seeds.py --model MobileNetV3Small --seeds 11 --keep /tmp/ptq_models
    python benchmarks/int8_levers.py --model-file /tmp/ptq_models/MobileNetV3Small_seed11.keras --seed 11

Data as in benchmarks/ptq_seeds.py (hard_digits at the model's input size, the seed's split;
calibration = the first 300 training images, agreement and accuracy on the 10,000 unseen test
images). Each lever is one .tflite file made by the package's export (or its converter with one
setting changed); agreement = the file's top-1 equal to Keras top-1, timed against the float32
file in interleaved rounds (median of per-round int8/fp32 ratios, LiteRT + XNNPACK, 1 thread).
The per-layer view (`ptq_diagnose.drift`) runs the default int8 file and the float32 file with every
tensor kept and gives, for each tensor present in both, the relative error of the int8 tensor
(RMS(int8 - float) / RMS(float)) over --layer-images test images: where along the network the
error grows.
The lever `qat` (not among the defaults: it trains) fine-tunes a quantization-aware copy of the
model (benchmarks/qat_vs_ptq.py's QAT arm) and exports it int8; `qat_distill` trains the copy to
reproduce the float model's outputs instead of the labels; besides the file's agreement with
the original float model both record the file's agreement with its own QAT Keras model:

    python benchmarks/int8_levers.py --model-file ... --seed 11 --levers qat --qat-epochs 1 \
        --layer-images 0 --out benchmarks/results/int8_levers_MobileNetV3Small_seed11_qat

Writes results/int8_levers_<model stem>.json and .md after every lever.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _setup import Run, tensorflow_threads, write_result  # noqa: E402
from ptq_diagnose import drift  # noqa: E402

SE_MARK = "-se-"            # keras_mobile's squeeze-excite layer names: blocks-2-0-se-pool, -se-scale, ...


def se_ops(tflite, only_scale=False):
    """{operator index: reason} of the squeeze-excite ops of an int8 file (output tensor named
    '...-se-...'; with only_scale, the MUL of the features by the gate)."""
    from keras_mobile.tflite.flatbuffer import op_name, read_model
    model, _ = read_model(tflite)
    sg = model.subgraphs[0]
    picks = {}
    for i, op in enumerate(sg.operators):
        name = (sg.tensors[int(op.outputs[0])].name or b"").decode()
        if SE_MARK in name and (not only_scale or ("se-scale" in name and op_name(model, op) == "MUL")):
            picks[i] = "squeeze-excite op kept in float (lever test)"
    return picks


def head_ops(tflite):
    """{operator index: reason} of the ops after the last MEAN (the global pool): the classifier head."""
    from keras_mobile.tflite.flatbuffer import op_name, read_model
    model, _ = read_model(tflite)
    ops = model.subgraphs[0].operators
    last = max(i for i, op in enumerate(ops) if op_name(model, op) == "MEAN")
    return {i: "classifier head kept in float (lever test)" for i in range(last + 1, len(ops))
            if op_name(model, ops[i]) not in ("DEQUANTIZE", "SOFTMAX")}


def matching_ops(tflite, pattern):
    """{operator index: reason} of the int8 ops whose output tensor name matches regex `pattern`."""
    import re

    from keras_mobile.tflite.flatbuffer import op_name, read_model
    model, _ = read_model(tflite)
    sg = model.subgraphs[0]
    return {i: f"matches {pattern} (lever test)" for i, op in enumerate(sg.operators)
            if re.search(pattern, (sg.tensors[int(op.outputs[0])].name or b"").decode())
            and op_name(model, op) not in ("QUANTIZE", "DEQUANTIZE")}


def widened(default_path, path, pattern, factor):
    """The default int8 file with the int8 range of every activation named by regex `pattern` (the
    op outputs) `factor` times wider: scale x factor, same zero point (producer and readers take
    the tensor's scale from the file, so both follow; a reading conv's int32 bias, whose scale is
    input scale x weight scale, is rescaled with it)."""
    import re

    from keras_mobile.files import write_atomic
    from keras_mobile.tflite.flatbuffer import read_model, write_model
    model, data = read_model(default_path)
    sg = model.subgraphs[0]
    wide = set()
    for op in sg.operators:
        t = sg.tensors[int(op.outputs[0])]
        if re.search(pattern, (t.name or b"").decode()) and t.quantization is not None and t.quantization.scale is not None:
            t.quantization.scale = [float(v) * factor for v in t.quantization.scale]
            wide.add(int(op.outputs[0]))
    for op in sg.operators:
        if len(op.inputs) == 3 and int(op.inputs[0]) in wide and op.inputs[2] >= 0:
            b = sg.tensors[int(op.inputs[2])]
            buf = model.buffers[b.buffer]
            v = np.frombuffer(bytes(bytearray(buf.data)), np.int32)
            buf.data = np.frombuffer(np.round(v / factor).astype(np.int32).tobytes(), np.uint8)
            b.quantization.scale = [float(x) * factor for x in b.quantization.scale]
    write_atomic(path, write_model(model, len(data)))


def with_islands(default_path, path, pick):
    """The default int8 file with the ops `pick(file)` chooses as float islands."""
    from keras_mobile.files import write_atomic
    from keras_mobile.tflite.flatbuffer import read_model
    from keras_mobile.tflite.float_islands import to_float
    model, data = read_model(default_path)
    write_atomic(path, to_float(model, pick(data), len(data))[0])


def int16_activations(model, calibration, path, drop_outliers=True):
    """TFLite's 16x8 mode (int16 activations, int8 weights) of the XNNPACK-lowered model (the mode
    has no HARD_SWISH), float IO; otherwise the default export's converter settings."""
    import tensorflow as tf
    from keras_mobile.files import write_atomic
    from keras_mobile.tflite.edgetpu_lowering import xnnpack_int8_friendly
    from keras_mobile.tflite.export import convert_quietly, converter_for
    lowered, _ = xnnpack_int8_friendly(model)
    conv = converter_for(lowered, "int8", calibration, "float32", "float32", len(calibration), progress=False,
                         drop_calibration_outliers=drop_outliers)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    write_atomic(path, convert_quietly(conv))


def int8_weights_only(model, path):
    """The float32 file of a copy of `model` whose conv/dense kernels are rounded to int8 per output
    channel, symmetric (the converter's weight scheme; a BatchNorm after the conv scales each
    channel, which per-channel rounding commutes with): what weight rounding alone costs."""
    import keras

    from keras_mobile import graph
    from keras_mobile.tflite import export
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer in graph.leaf_layers(copy):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            w = layer.get_weights()
            kept = 2 if isinstance(layer, keras.layers.DepthwiseConv2D) else 1    # (in, multiplier) of a depthwise
            scale = np.abs(w[0]).max(axis=tuple(range(w[0].ndim - kept)), keepdims=True) / 127.0
            w[0] = np.round(w[0] / np.where(scale > 0, scale, 1.0)) * scale
            layer.set_weights(w)
    export(copy, path, progress=False)


def qat_file(model, x, path, labels, epochs=1, images=None, lr=1e-4, seed=0, distill=False):
    """Writes the int8 export of a quantization-aware copy of `model` fine-tuned for `epochs` on
    the first `images` training images (benchmarks/qat_vs_ptq.py's QAT arm: ranges calibrated on
    256 training images, Adam at `lr`); `export(qat, path, 'int8')` needs no representative data,
    the fake-quant ranges are the file's. `distill`: no labels; the copy (BatchNorm folded with
    its moving statistics, so it starts as the float model's function) learns the float model's
    own outputs (mean squared error), i.e. to agree with `model` rather than with the labels.
    Returns the QAT Keras model."""
    import keras
    from qat_vs_ptq import qat_finetune

    from keras_mobile.tflite import export, quantize_model
    keras.utils.set_random_seed(seed)
    x, labels = x[:images], labels[:images]
    if distill:
        qat = quantize_model(model, calibration_data=x[:256], calibration_steps=256, freeze_bn=True)
        qat.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
        qat.fit(x, model.predict(x, batch_size=256, verbose=0), batch_size=64, epochs=epochs, verbose=2)
    else:
        qat = qat_finetune(model, x, labels, epochs, lr=lr)
    export(qat, path, "int8", progress=False)
    return qat


def timing(paths, rounds):
    import bench_workers

    from keras_mobile.tflite.inspect import make_interpreter, random_inputs
    fns = {k: random_inputs(make_interpreter(p, num_threads=1)).invoke for k, p in paths.items()}
    load = os.getloadavg()[0]
    times = bench_workers.interleaved(fns, runs=rounds, warmup=5, budget=float("inf"), min_runs=rounds)
    return load, {k: {"ms": bench_workers.summary(v, 1)["ms"],
                      "over_fp32": bench_workers.ratio(v, times["fp32"])} for k, v in times.items()}


def render(r):
    command = r["command"] if r["command"].startswith("PYTHONPATH") else f"python benchmarks/{r['command']}"
    lines = [f"# int8 levers: agreement with Keras and speed (`{r['model_file']}`)", "",
             f"Command: `{command}` (commit {r['commit']}); {r['test']} unseen hard_digits "
             f"images (seed {r['seed']}), calibration = the first 300 training images. Keras top-1 accuracy "
             f"{100 * r['keras_accuracy']:.2f} %. Timing: LiteRT + XNNPACK, 1 thread, batch 1, {r['rounds']} interleaved "
             f"rounds, int8/fp32 = median of per-round ratios, 1-min load {r.get('timing_load', float('nan')):.1f} "
             "(2 shared cores).", "",
             "| lever | agreement with Keras | top-1 accuracy | int8 / fp32 time | ms | XNNPACK partitions | ops outside XNNPACK |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, v in r["levers"].items():
        t = r.get("timing", {}).get(name, {})
        lines.append(f"| {name}: {v['what']} | {100 * v['agreement']:.2f} % | {100 * v['accuracy']:.2f} % | "
                     f"{t.get('over_fp32', float('nan')):.3f} | {t.get('ms', float('nan')):.3f} | {v['partitions']} | "
                     f"{v['outside']} |")
    for name, v in r["levers"].items():
        q = v.get("qat_keras")
        if q:
            trained = (f"{q['epochs']} epoch(s) on {q['images']:,} training images, lr {q['lr']:g}" if q["epochs"]
                       else "no training: its ranges calibrated on 256 training images")
            lines += ["", f"{name}: the QAT Keras model ({trained}, {v['seconds']:.0f} s with export and scoring) has top-1 accuracy "
                      f"{100 * q['accuracy']:.2f} % and agrees with the float model on {100 * q['agreement_with_float']:.2f} %; "
                      f"its int8 file agrees with it on {100 * q['file_agreement']:.2f} % (the table's agreement "
                      "is the file's with the original float model)."]
    if r.get("layers"):
        lines += ["", f"Default int8 file: relative error of op outputs against the float32 file "
                  f"({r['layer_images']} test images; every {r['layer_every']}th op and the largest jumps):", "",
                  "| tensor (in execution order) | RMS error / RMS |", "|---|---:|"]
        lines += [f"| `{n[-70:]}` | {e:.3f} |" for n, e in r["layers"]]
    if r.get("provenance"):
        lines += ["", f"Provenance: {r['provenance']}"]
    return "\n".join(lines) + "\n"


# the stem and stages 0-2 of a keras_mobile MobileNetV3 (its stem is '.../bn1_1/', a block's '-bn1_1/')
NAMED = {"float_early": "float:/(bn1|act1)_1/|blocks-[012]-|preprocessing"}
LEVERS = {
    "default": "`export(model, path, 'int8', ...)` as users call it",
    "fp32": "float32 file (reference)",
    "no_outlier_drop": "default with drop_calibration_outliers=False (min/max over all 300)",
    "true_ranges": "default with true_calibration_ranges=True",
    "calib_2000": "default calibrated on the first 2,000 training images (outliers dropped, <= 5 %)",
    "se_scale_float": "default with the SE scale MULs as float islands",
    "se_float": "default with every SE op (pool, both convs, gate, scale) as float islands",
    "head_float": "default with the ops after the global pool (head conv, hard-swish, classifier) as float islands",
    "se_head_float": "se_float and head_float together",
    "weights_only": "float32 file of the model with int8-rounded weights (per channel): weight rounding alone",
    "dynamic": "`export(..., 'dynamic')`: int8 weights, float activations (not a full-integer file)",
    "int16_act": "16x8 mode: int16 activations, int8 weights (float IO)",
    "int16_act_all": "int16_act calibrated on all 300 images (no outlier drop: int16 has the steps to spare)",
    "qat": "`export(qat, path, 'int8')` of `quantize_model(model)` fine-tuned with fake quantization "
           "(--qat-epochs on --qat-images training images, Adam at --qat-lr); agreement with the original float model",
    "qat_distill": "as qat, but BatchNorm frozen and trained on the float model's outputs (MSE), no labels: "
                   "QAT aimed at agreeing with the float model",
}


DEFAULT_LEVERS = ["no_outlier_drop", "true_ranges", "quantile_0.97", "quantile_0.9", "quantile_0.7", "widen:se-scale:2",
                  "se_scale_float", "se_float", "head_float", "float_early", "quantile_0.9+float_early", "weights_only", "dynamic",
                  "int16_act", "int16_act_all"]


def describe(lever):
    if "+" in lever:
        return " + ".join(describe(part) for part in lever.split("+"))
    if lever in NAMED:
        return f"{describe(NAMED[lever])} ({lever})"
    if lever.startswith("float:"):
        return f"default with the ops whose output is named /{lever[6:]}/ as float islands"
    if lever.startswith("widen:"):
        _, pattern, factor = lever.split(":")
        return f"default with the int8 ranges of the tensors named /{pattern}/ {factor}x wider"
    if lever.startswith("quantile_"):
        return f"true ranges, each tensor's max the {lever[9:]} quantile of its per-sample maxima"
    return LEVERS[lever]


def make(lever, model, x, default_path, path, qat=None):
    """Writes the file of `lever` to `path`; island/widening levers rewrite `default_path`, or the
    file of the lever before a '+' (quantile_0.9+float_early). `qat`: the keyword arguments of
    `qat_file` (labels, epochs, images, lr, seed) for the lever 'qat', which returns its QAT
    Keras model (the other levers None)."""
    from keras_mobile.tflite import export
    lever = NAMED.get(lever, lever)
    if "+" in lever:
        base, rest = lever.split("+", 1)
        make(base, model, x, default_path, path + ".base")
        return make(rest, model, x, path + ".base", path)
    kw = dict(representative_data=x[:300], num_calibration_steps=300, progress=False)
    if lever == "default":
        export(model, path, "int8", **kw)
    elif lever == "fp32":
        export(model, path, progress=False)
    elif lever == "no_outlier_drop":
        export(model, path, "int8", drop_calibration_outliers=False, **kw)
    elif lever == "true_ranges":
        export(model, path, "int8", true_calibration_ranges=True, **kw)
    elif lever.startswith("quantile_"):
        export(model, path, "int8", true_calibration_ranges=float(lever.split("_")[1]), **kw)
    elif lever == "calib_2000":
        export(model, path, "int8", representative_data=x[:2000], num_calibration_steps=2000, progress=False)
    elif lever in ("se_scale_float", "se_float"):
        with_islands(default_path, path, lambda f: se_ops(f, only_scale=lever == "se_scale_float"))
    elif lever == "head_float":
        with_islands(default_path, path, head_ops)
    elif lever == "se_head_float":
        with_islands(default_path, path, lambda f: {**se_ops(f), **head_ops(f)})
    elif lever.startswith("float:"):
        with_islands(default_path, path, lambda f: matching_ops(f, lever.split(":", 1)[1]))
    elif lever.startswith("widen:"):
        _, pattern, factor = lever.split(":")
        widened(default_path, path, pattern, float(factor))
    elif lever == "weights_only":
        int8_weights_only(model, path)
    elif lever == "dynamic":
        export(model, path, "dynamic", progress=False)
    elif lever in ("int16_act", "int16_act_all"):
        int16_activations(model, x[:300], path, drop_outliers=lever == "int16_act")
    elif lever in ("qat", "qat_distill"):
        return qat_file(model, x, path, distill=lever == "qat_distill", **qat)
    else:
        raise ValueError(f"unknown lever {lever!r}; known: {', '.join(LEVERS)}")


def main(argv=None):
    tensorflow_threads(1)
    import keras

    from keras_mobile.data.digits import hard_digits
    from keras_mobile.tflite import run_tflite
    from keras_mobile.tflite.inspect import xnnpack_partitions
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-file", required=True)
    p.add_argument("--seed", type=int, required=True, help="the ptq_seeds seed the model was trained with")
    p.add_argument("--levers", nargs="+", default=DEFAULT_LEVERS,
                   help="names of LEVERS, quantile_Q, float:REGEX, widen:REGEX:FACTOR, float_early, A+B")
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--layer-images", type=int, default=100, help="0: no per-layer view")
    p.add_argument("--qat-epochs", type=int, default=1, help="lever qat: epochs of quantization-aware fine-tuning")
    p.add_argument("--qat-images", type=int, default=None, help="lever qat: the first N training images (default all)")
    p.add_argument("--qat-lr", type=float, default=1e-4, help="lever qat: Adam learning rate")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    model = keras.models.load_model(args.model_file)
    size = model.input_shape[1]
    (x, y), (xt, yt) = hard_digits(20000, 10000, size, seed=args.seed)
    xt, yt = xt[:args.test], yt[:args.test]
    keras_top1 = model.predict(xt, batch_size=256, verbose=0).argmax(-1)
    run = Run("int8_levers.py", argv)
    stem = os.path.splitext(os.path.basename(args.model_file))[0]
    out = args.out or os.path.join(HERE, "results", f"int8_levers_{stem}")
    r = {"command": run.command, "commit": run.commit,
         "model_file": args.model_file, "seed": args.seed, "test": len(xt), "rounds": args.rounds,
         "keras_accuracy": float((keras_top1 == yt).mean()), "levers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        names = list(dict.fromkeys(["fp32", "default"] + args.levers))
        paths = {k: os.path.join(tmp, f"{n}.tflite") for n, k in enumerate(names)}
        for lever in names:
            t0 = time.time()
            qat = make(lever, model, x, paths["default"], paths[lever],
                       qat=dict(labels=y, epochs=args.qat_epochs, images=args.qat_images, lr=args.qat_lr, seed=args.seed))
            top1 = run_tflite(paths[lever], xt).argmax(-1)
            parts, outside = xnnpack_partitions(paths[lever])
            r["levers"][lever] = {"what": describe(lever), "agreement": float((top1 == keras_top1).mean()),
                                  "accuracy": float((top1 == yt).mean()), "partitions": parts,
                                  "outside": len(outside), "seconds": round(time.time() - t0, 1)}
            if qat is not None:         # the file against its own Keras model, and that model against the float one
                qat_top1 = qat.predict(xt, batch_size=256, verbose=0).argmax(-1)
                r["levers"][lever]["qat_keras"] = {
                    "epochs": args.qat_epochs, "images": len(x[:args.qat_images]), "lr": args.qat_lr,
                    "file_agreement": float((top1 == qat_top1).mean()), "accuracy": float((qat_top1 == yt).mean()),
                    "agreement_with_float": float((qat_top1 == keras_top1).mean())}
            print(lever, r["levers"][lever], flush=True)
            write_result(out, r, render(r))
        if args.layer_images:
            rows = [(d["tensor"], d["rel_rmse"]) for d in drift(paths["fp32"], paths["default"], xt[:args.layer_images])]
            every = max(1, len(rows) // 25)
            jumps = sorted(range(1, len(rows)), key=lambda k: rows[k - 1][1] - rows[k][1])[:8]
            keep = sorted(set(range(0, len(rows), every)) | set(jumps) | {len(rows) - 1})
            r["layers"], r["layer_images"], r["layer_every"] = [rows[k] for k in keep], args.layer_images, every
            write_result(out, r, render(r))
        r["timing_load"], r["timing"] = timing(paths, args.rounds)
    r["load_after"] = os.getloadavg()
    write_result(out, r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()

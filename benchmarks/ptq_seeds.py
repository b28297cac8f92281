"""Default int8 PTQ accuracy over freshly trained models: does it ever collapse?

    python benchmarks/ptq_seeds.py --model MobileNetV3Small --seeds 0 1 2 3 4

Per seed: train a float model from scratch on keras_mobile.data.digits.hard_digits (the setup of
benchmarks/qat_vs_ptq.py: 48 px, 20,000 images, 8 epochs AdamW + cosine), then int8 PTQ with
int8 PTQ calibrated on 300 training images in two graphs: "converter" (the TFLiteConverter graph
as it comes, HARD_SWISH ops and int8 SOFTMAX, with plain min/max calibration over all 300 images:
the export before issue 15) and "default" (`keras_mobile.tflite.export` as a user calls it today:
hard-swish as relu6(x+3)*(x/6), softmax on the dequantized logits, calibration outliers dropped).
MobileOne models are reparameterized before export. Accuracies are LiteRT's on the files over
10,000 unseen test images; loss = float - int8 with its paired standard error; agreement = int8
top-1 equal to Keras top-1. When a graph loses more than --flag points, or the default graph
agrees with Keras on less than --flag-agreement %, TensorFlow's QuantizationDebugger ranks the
layers by their own int8 error (RMSE / scale of the op's output, inputs taken from the float
model) to name the culprit. Writes results/ptq_seeds_<model>_drop_outliers.json and .md (the
default since the outlier fix; ptq_seeds_<model>.* hold the record of the earlier default) after
every seed.
"""
import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import commit, write_result  # noqa: E402



def layer_errors(model, calibration, data, drop_outliers, top=8):
    """The `top` ops with the largest int8 error relative to their output step (RMSE / scale), from
    tf.lite.experimental.QuantizationDebugger on the converter graph with float IO, calibrated as
    the graph under study (`drop_outliers`)."""
    import tensorflow as tf
    from keras_mobile.tflite.export import converter_for
    conv = converter_for(model, "int8", calibration, "float32", "float32", len(calibration), progress=False,
                         drop_calibration_outliers=drop_outliers)
    dbg = tf.lite.experimental.QuantizationDebugger(converter=conv,
                                                    debug_dataset=lambda: ([s[None]] for s in data))
    dbg.run()
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    rows = []
    for r in csv.DictReader(io.StringIO(buf.getvalue())):
        scale = float(r["scale"])
        rows.append({"op": r["op_name"], "tensor": r["tensor_name"][:90], "scale": scale,
                     "rmse_over_scale": float(np.sqrt(float(r["mean_squared_error"]))) / scale if scale else 0.0,
                     "max_abs_error": float(r["max_abs_error"])})
    return sorted(rows, key=lambda r: -r["rmse_over_scale"])[:top]


def run_seed(args, seed, data, workdir):
    import keras

    import keras_mobile
    from keras_mobile.tflite import export, run_tflite
    from keras_mobile.files import write_atomic
    from keras_mobile.tflite.export import converter_for
    from keras_mobile.reparameterize import reparameterize
    from keras_mobile.tflite import representative
    from keras_mobile.tflite.export import _float_bytes
    from qat_vs_ptq import paired

    (x, y), (xt, yt) = data
    keras.utils.set_random_seed(seed)
    model = getattr(keras_mobile, args.model)(weights=None, input_shape=(args.size, args.size, 3),
                                              classes=10, classifier_activation=args.classifier_activation)
    steps = args.epochs * (len(x) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=args.lr,
                                                      warmup_steps=max(1, steps // 20))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=args.classifier_activation is None)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4), loss=loss)
    t0 = time.time()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    model.save(os.path.join(args.keep, f"{args.model}_seed{seed}.keras")) if args.keep else None
    train_seconds = time.time() - t0
    keras_top1 = np.argmax(model.predict(xt, batch_size=256, verbose=0), -1)
    correct = {"float": keras_top1 == yt}
    if "MobileOne" in args.model:                 # the deployed form: one conv per block
        model = reparameterize(model)
        fused_top1 = np.argmax(model.predict(xt, batch_size=256, verbose=0), -1)
        print(f"reparameterized: top-1 equal to the trained model on {100 * (fused_top1 == keras_top1).mean():.2f} %")
    calib = x[:300]
    dropped = representative.outlier_samples(_float_bytes(model), list(representative.samples(calib, calib.shape[1:], 300)))
    paths = {"converter": os.path.join(workdir, f"converter_{seed}.tflite"),
             "default": os.path.join(workdir, f"default_{seed}.tflite")}
    write_atomic(paths["converter"], converter_for(model, "int8", calib, "uint8", "float32", 300, progress=False,
                                                   drop_calibration_outliers=False).convert())
    export(model, paths["default"], "int8", representative_data=calib, num_calibration_steps=300, progress=False)
    result = {"seed": seed, "train_seconds": round(train_seconds, 1), "accuracy": {}, "loss": {}, "culprits": {},
              "calibration_samples_dropped": [int(i) for i in dropped]}
    for name, path in paths.items():
        pred = np.argmax(run_tflite(path, xt), -1)
        correct[name] = pred == yt
        mean, se = paired(correct["float"], correct[name])
        result["loss"][name] = {"mean": mean, "se": se}
        agreement = float((pred == keras_top1).mean())
        result.setdefault("agreement_with_keras", {})[name] = agreement
        if mean > args.flag / 100 or (name == "default" and agreement < args.flag_agreement / 100):
            result["culprits"][name] = layer_errors(model, calib, xt[:200], drop_outliers=name == "default")
    result["accuracy"] = {k: float(v.mean()) for k, v in correct.items()}
    result["seconds"] = round(time.time() - t0, 1)
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=1), flush=True)
    return result


def render(r):
    a = r["args"]
    lines = [f"# Default int8 PTQ over freshly trained {a['model']} ({a['size']} px, hard digits, "
             f"{a['train']} training images, {a['epochs']} epochs)", "",
             f"Loss = float - int8 top-1 on {a.get('test', 10000):,} unseen images (points, ± paired SE). converter = the "
             "TFLiteConverter graph as it comes (HARD_SWISH, int8 SOFTMAX) calibrated min/max over all 300 "
             "images (the export before issue 15); default = `keras_mobile.tflite.export` today (hard-swish "
             "lowered, float softmax tail, calibration outliers dropped: `dropped` of 300). Agreement = int8 "
             "top-1 equal to Keras top-1. Load = 1-min load average after the seed (2 cores, shared machine).",
             "", f"Command: `python benchmarks/{r['command']}`" + (f" (commit {r['commit']})" if r.get("commit") else ""), "",
             "| seed | float | converter int8 | default int8 | converter loss | default loss | converter agreement "
             "| default agreement | dropped | train s | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in r["seeds"]:
        acc, loss = s["accuracy"], s["loss"]
        lines.append(f"| {s['seed']} | {100 * acc['float']:.2f} | {100 * acc['converter']:.2f} | {100 * acc['default']:.2f} | "
                     f"{100 * loss['converter']['mean']:+.2f} ± {100 * loss['converter']['se']:.2f} | "
                     f"{100 * loss['default']['mean']:+.2f} ± {100 * loss['default']['se']:.2f} | "
                     f"{100 * s['agreement_with_keras']['converter']:.2f} % | "
                     f"{100 * s['agreement_with_keras']['default']:.2f} % | {len(s.get('calibration_samples_dropped', []))} | "
                     f"{s['train_seconds']:.0f} | {s.get('load_after', ['?'])[0]} |")
    for s in r["seeds"]:
        for graph, rows in s["culprits"].items():
            lines += ["", f"Seed {s['seed']}, {graph} graph: ops with the largest own int8 error (RMSE / output step):"]
            lines += [f"- {c['op']} `{c['tensor']}`: {c['rmse_over_scale']:.2f} steps (scale {c['scale']:.3g})" for c in rows[:5]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    from keras_mobile.data.digits import hard_digits
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="MobileNetV3Small")
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--classifier-activation", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--flag", type=float, default=1.5, help="points of loss that trigger the per-layer report")
    p.add_argument("--flag-agreement", type=float, default=99.0,
                   help="default-graph agreement with Keras (%%) below which the per-layer report runs")
    p.add_argument("--keep", default=None, help="folder to save the trained float models in")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    out = args.out or os.path.join(HERE, "results", f"ptq_seeds_{args.model}_drop_outliers")
    r = {"command": " ".join(["ptq_seeds.py"] + (argv or sys.argv[1:])), "args": vars(args), "seeds": [],
         "commit": commit(), "load_before": os.getloadavg()}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        for seed in args.seeds:
            r["seeds"].append(run_seed(args, seed, hard_digits(args.train, args.test, args.size, seed=seed), workdir))
            r["load_after"] = os.getloadavg()
            write_result(out, r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()

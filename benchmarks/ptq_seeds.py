"""Default int8 PTQ accuracy over freshly trained models: does it ever collapse?

    python benchmarks/ptq_seeds.py --model MobileNetV3Small --seeds 0 1 2 3 4

Per seed: train a float model from scratch on keras_mobile.data.digits.hard_digits (the setup of
benchmarks/qat_vs_ptq.py: 48 px, 20,000 images, 8 epochs AdamW + cosine), then int8 PTQ with
min/max calibration on 300 training images in two graphs: "converter" (the TFLiteConverter graph
as it comes: HARD_SWISH ops, int8 SOFTMAX) and "default" (`keras_mobile.tflite.export` today:
hard-swish as MUL/ADD+RELU6/MUL, softmax on the dequantized logits). Accuracies are LiteRT's on
the files over 10,000 unseen test images; loss = float - int8 with its paired standard error.
When a graph loses more than --flag points, TensorFlow's QuantizationDebugger ranks the layers by
their own int8 error (RMSE / scale of the op's output, inputs taken from the float model) to
name the culprit. Writes results/ptq_seeds_<model>.json and .md after every seed.
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

import bench_workers  # noqa: E402


def layer_errors(model, calibration, data, top=8):
    """The `top` ops with the largest int8 error relative to their output step (RMSE / scale), from
    tf.lite.experimental.QuantizationDebugger on the converter graph with float IO."""
    import tensorflow as tf
    from keras_mobile.tflite.export import converter_for
    conv = converter_for(model, "int8", calibration, "float32", "float32", len(calibration), progress=False)
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
    calib = x[:300]
    correct = {"float": np.argmax(model.predict(xt, batch_size=256, verbose=0), -1) == yt}
    paths = {"converter": os.path.join(workdir, f"converter_{seed}.tflite"),
             "default": os.path.join(workdir, f"default_{seed}.tflite")}
    write_atomic(paths["converter"], converter_for(model, "int8", calib, "uint8", "float32", 300,
                                                   progress=False).convert())
    export(model, paths["default"], "int8", representative_data=calib, num_calibration_steps=300, progress=False)
    result = {"seed": seed, "train_seconds": round(time.time() - t0, 1), "accuracy": {}, "loss": {}, "culprits": {}}
    keras_top1 = np.argmax(model.predict(xt, batch_size=256, verbose=0), -1)
    for name, path in paths.items():
        pred = np.argmax(run_tflite(path, xt), -1)
        correct[name] = pred == yt
        mean, se = paired(correct["float"], correct[name])
        result["loss"][name] = {"mean": mean, "se": se}
        result.setdefault("agreement_with_keras", {})[name] = float((pred == keras_top1).mean())
        if mean > args.flag / 100:
            result["culprits"][name] = layer_errors(model, calib, xt[:200])
    result["accuracy"] = {k: float(v.mean()) for k, v in correct.items()}
    print(json.dumps(result, indent=1), flush=True)
    return result


def render(r):
    a = r["args"]
    lines = [f"# Default int8 PTQ over freshly trained {a['model']} ({a['size']} px, hard digits, {a['epochs']} epochs)", "",
             "Loss = float - int8 top-1 on 10,000 unseen images (points, ± paired SE). converter = the "
             "TFLiteConverter graph as it comes (HARD_SWISH, int8 SOFTMAX); default = keras_mobile's export.", "",
             "| seed | float | converter int8 | default int8 | converter loss | default loss | default agreement with Keras |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in r["seeds"]:
        acc, loss = s["accuracy"], s["loss"]
        lines.append(f"| {s['seed']} | {100 * acc['float']:.2f} | {100 * acc['converter']:.2f} | {100 * acc['default']:.2f} | "
                     f"{100 * loss['converter']['mean']:+.2f} ± {100 * loss['converter']['se']:.2f} | "
                     f"{100 * loss['default']['mean']:+.2f} ± {100 * loss['default']['se']:.2f} | "
                     f"{100 * s['agreement_with_keras']['default']:.2f} % |")
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
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--classifier-activation", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--flag", type=float, default=1.5, help="points of loss that trigger the per-layer report")
    p.add_argument("--keep", default=None, help="folder to save the trained float models in")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    out = args.out or os.path.join(HERE, "results", f"ptq_seeds_{args.model}")
    r = {"command": " ".join(["ptq_seeds.py"] + (argv or sys.argv[1:])), "args": vars(args), "seeds": [],
         "load_before": os.getloadavg()}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        for seed in args.seeds:
            r["seeds"].append(run_seed(args, seed, hard_digits(args.train, 10000, args.size, seed=seed), workdir))
            r["load_after"] = os.getloadavg()
            bench_workers._dump(r, out + ".json")       # atomic: a crash keeps what was measured
            with open(out + ".md", "w") as f:
                f.write(render(r))
    print(render(r))


if __name__ == "__main__":
    main()

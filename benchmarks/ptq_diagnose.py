"""Why does default int8 PTQ of a trained MobileNetV3Small collapse? Per-tensor drift and fixes.

    python benchmarks/ptq_diagnose.py --model-file /tmp/int8w/keep2/MobileNetV3Small_seed3.keras --seed 3

Data, calibration (the first 300 training images) and evaluation (10,000 unseen images) as in
benchmarks/ptq_seeds.py. Drift: the float32 and default int8 files are run with all tensors kept
on the same test images; tensors are matched by name and compared (cosine, relative RMSE, the share
of the squared error that is a per-channel mean: what a bias correction could cancel) in execution
order, so where the error grows is visible. Writes results/ptq_diagnose_<name>.json.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import tensorflow_threads  # noqa: E402


def interpreter(path):
    from keras_mobile.tflite.inspect import make_interpreter   # keras_mobile.tflite.inspect is a function
    return make_interpreter(path, delegates=False, num_threads=1, preserve_all_tensors=True)


def accuracy(path, xt, yt):
    from keras_mobile.tflite import run_tflite
    return float((np.argmax(run_tflite(path, xt), -1) == yt).mean())


def tensors(path, images):
    """{name: float array (n, ...)} of every tensor after running `images` one by one, plus the
    execution order of op outputs."""
    from keras_mobile.tflite.inspect import op_details
    it = interpreter(path)
    inp = it.get_input_details()[0]
    order = []
    for op in op_details(it):
        order += [int(i) for i in op["outputs"]]
    details = {d["index"]: d for d in it.get_tensor_details()}
    out = {}
    for x in images:
        s, zp = inp["quantization"]
        v = x[None]
        if np.dtype(inp["dtype"]).kind in "iu":
            v = np.clip(np.round(v / s + zp), 0 if inp["dtype"] == np.uint8 else -128, 255 if inp["dtype"] == np.uint8 else 127)
        it.set_tensor(inp["index"], v.astype(inp["dtype"]))
        it.invoke()
        for i in order:
            d = details[i]
            try:
                t = it.get_tensor(i)
            except ValueError:
                continue
            s, zp = d["quantization"]
            if np.dtype(d["dtype"]).kind in "iu" and s:
                t = (t.astype(np.float32) - zp) * s
            out.setdefault(d["name"], []).append(np.asarray(t, np.float32))
    names = [details[i]["name"] for i in order]
    qparams = {details[i]["name"]: details[i]["quantization"] for i in order}
    return {k: np.stack(v) for k, v in out.items()}, names, qparams


def drift(float_path, int8_path, images):
    f, _, _ = tensors(float_path, images)
    q, order, qp = tensors(int8_path, images)
    rows = []
    for name in order:
        if name not in f or name not in q or f[name].shape != q[name].shape:
            continue
        a, b = f[name].reshape(len(images), -1), q[name].reshape(len(images), -1)
        cos = float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))
        rel = float(np.sqrt(np.mean((a - b) ** 2)) / (np.sqrt(np.mean(a ** 2)) + 1e-12))
        scale = float(qp[name][0])
        # share of the squared error that is a per-channel mean over images and positions: what an
        # (empirical) bias correction of the producing op could cancel
        err = (q[name] - f[name]).reshape(-1, f[name].shape[-1])
        mean_share = float(np.sum(err.mean(0) ** 2) * len(err) / (np.sum(err ** 2) + 1e-30))
        rows.append({"tensor": name[:100], "cosine": cos, "rel_rmse": rel, "channel_mean_share": mean_share,
                     "scale": scale,
                     "float_absmax": float(np.abs(a).max()), "float_p99.9": float(np.percentile(np.abs(a), 99.9)),
                     "float_rms": float(np.sqrt(np.mean(a ** 2))),
                     "range_steps_used_p99.9": float(np.percentile(np.abs(a), 99.9) / scale) if scale else None})
    return rows


def main(argv=None):
    tensorflow_threads(1)       # here, not at import: benchmarks/int8_agreement.py imports drift()
    import keras

    from keras_mobile.data.digits import hard_digits
    from keras_mobile.tflite import export
    p = argparse.ArgumentParser()
    p.add_argument("--model-file", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--drift-images", type=int, default=40)
    p.add_argument("--work", default="/tmp/ptqw")
    p.add_argument("--steps", nargs="+", default=["drift"])
    p.add_argument("--drop-outliers", action="store_true",
                   help="int8 file calibrated as export does now (drop_calibration_outliers=True); results "
                        "under 'drift_drop_outliers'. Default: plain min/max over all 300 images ('drift')")
    args = p.parse_args(argv)
    (x, y), (xt, yt) = hard_digits(20000, 10000, args.size, seed=args.seed)
    model = keras.saving.load_model(args.model_file, compile=False)
    name = os.path.basename(args.model_file).replace(".keras", "")
    out = os.path.join(HERE, "results", f"ptq_diagnose_{name}.json")
    r = json.load(open(out)) if os.path.exists(out) else {}
    r["load"] = os.getloadavg()
    fp = os.path.join(args.work, f"{name}_f32.tflite")
    qp = os.path.join(args.work, f"{name}_int8{'_drop' if args.drop_outliers else ''}.tflite")
    if not os.path.exists(fp):
        export(model, fp, "float32", progress=False)
    if not os.path.exists(qp):
        export(model, qp, "int8", representative_data=x[:300], num_calibration_steps=300, progress=False,
               drop_calibration_outliers=args.drop_outliers)
    if "acc" in args.steps:
        r["accuracy"] = {"float_keras": float((np.argmax(model.predict(xt, batch_size=256, verbose=0), -1) == yt).mean()),
                         "float32_file": accuracy(fp, xt, yt), "default_int8": accuracy(qp, xt, yt)}
        print(r["accuracy"], flush=True)
    if "drift" in args.steps:
        key = "drift_drop_outliers" if args.drop_outliers else "drift"
        r[key] = drift(fp, qp, xt[:args.drift_images])
        for row in r[key]:
            print(f"{row['cosine']:.4f} {row['rel_rmse']:.3f} scale={row['scale']:.3g} absmax={row['float_absmax']:.3g} "
                  f"p99.9={row['float_p99.9']:.3g} rms={row['float_rms']:.3g} {row['tensor']}")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()

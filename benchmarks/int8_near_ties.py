"""Where does a trained model's default int8 file disagree with Keras: near-ties, or one op type?

    python benchmarks/ptq_seeds.py --model MobileNetV3Small --seeds 11 --keep /tmp/ptq_models
    python benchmarks/int8_near_ties.py --model-file /tmp/ptq_models/MobileNetV3Small_seed11.keras --seed 11

Data as in benchmarks/ptq_seeds.py (hard_digits at the model's input size, the seed's split;
calibration = the first 300 training images, test = the first --test unseen images). Two views:
1. agreement of the default int8 file (`keras_mobile.tflite.export`) with Keras top-1 by the Keras
   logit margin (top-1 minus top-2): if disagreements sit only on small margins, int8 rounding
   flips near-ties rather than breaking the model;
2. agreement when one op type is left in float (TensorFlow's QuantizationDebugger with
   `denylisted_ops`, on the converter graph): if no single op type recovers agreement, the error
   is spread over the network, not owned by one kind of layer. This view's files are not the
   default file's graph: `converter_for(model, "int8", ..., "float32", "float32")` gives a float32
   input and keeps the converter's HARD_SWISH and int8 SOFTMAX, while `export()` lowers hard-swish
   to int8 ops, takes uint8 input, computes the classifier SOFTMAX in float (the tail), zeroes
   weights reading always-zero input channels and makes float islands. Its "(none: all int8)" row
   is the baseline of the op-type rows, not the default file (MobileNetV3Small seed 11: 95.80 % vs
   95.05 %, a 0.75-point gap; which difference makes it was not measured).
Writes results/int8_near_ties_<model stem>.json and .md.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import Run, run_line, tensorflow_threads, write_result  # noqa: E402

OP_TYPES = ("MEAN", "MUL", "ADD", "HARD_SWISH", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
MARGINS = (0.1, 0.25, 0.5, 1.0, 2.0)


def by_margin(logits, pred):
    """Rows (margin floor, share of inputs above it, agreement above it) of int8 top-1 `pred`."""
    top = np.sort(logits, -1)
    margin = top[:, -1] - top[:, -2]
    same = pred == logits.argmax(-1)
    return [{"margin_above": m, "share": float((margin > m).mean()), "agreement": float(same[margin > m].mean())}
            for m in MARGINS], float(np.median(margin[~same])) if (~same).any() else None


def denylisted(model, calibration, op_type, path):
    """The converter's int8 file of `model` with every `op_type` op left in float (float32 IO, the
    converter's graph: not the graph `export()` makes, see the module docstring)."""
    import tensorflow as tf
    from keras_mobile.files import write_atomic
    from keras_mobile.tflite.export import converter_for
    conv = converter_for(model, "int8", calibration, "float32", "float32", len(calibration), progress=False)
    opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=[op_type] if op_type else [])
    dbg = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_options=opts,
                                                    debug_dataset=lambda: ([s[None]] for s in calibration[:10]))
    write_atomic(path, dbg.get_nondebug_quantized_model())
    return path


def render(r):
    lines = [f"# Default int8 vs Keras: near-ties or one op type? (`{r['model_file']}`)", "",
             f"{r['test']} unseen hard_digits images. " + run_line(r), "",
             f"Default int8 file: agreement {100 * r['agreement']:.2f} %; int8 logit error RMS {r['logit_rmse']:.3f} "
             f"(Keras logits' std {r['logit_std']:.2f}); median Keras margin of the disagreeing inputs "
             f"{r['median_margin_of_disagreeing']:.3f}.", "",
             "| Keras margin above | share of inputs | agreement |", "|---:|---:|---:|"]
    lines += [f"| {m['margin_above']:g} | {100 * m['share']:.1f} % | {100 * m['agreement']:.2f} % |" for m in r["by_margin"]]
    lines += ["", "Converter graph with one op type left in float (QuantizationDebugger `denylisted_ops`):", "",
              "| float op type | agreement |", "|---|---:|"]
    lines += [f"| {k or '(none: all int8)'} | {100 * v:.2f} % |" for k, v in r["denylisted"].items()]
    base = r["denylisted"][""]
    lines += ["", "These files are not the default file's graph: `converter_for(model, \"int8\", ..., \"float32\", "
              "\"float32\")` has a float32 input and keeps the converter's HARD_SWISH and int8 SOFTMAX; `export()` lowers "
              "hard-swish to int8 ops, takes uint8 input, computes the classifier SOFTMAX in float, zeroes weights "
              "reading always-zero input channels and makes float islands of the int8 ops XNNPACK refuses. So the "
              f"\"(none: all int8)\" row ({100 * base:.2f} %) differs from the default file ({100 * r['agreement']:.2f} %) "
              f"by {100 * (base - r['agreement']):+.2f} points: compare the op-type rows with that row, not with the "
              "default file. Which of the differences makes the gap was not measured."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    tensorflow_threads(1)
    import tempfile

    import keras

    from keras_mobile.data.digits import hard_digits
    from keras_mobile.tflite import export, run_tflite
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-file", required=True)
    p.add_argument("--seed", type=int, required=True, help="the ptq_seeds seed the model was trained with")
    p.add_argument("--test", type=int, default=4000)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    run = Run("int8_near_ties.py", argv)
    model = keras.models.load_model(args.model_file)
    size = model.input_shape[1]
    (x, _), (xt, _) = hard_digits(20000, 10000, size, seed=args.seed)
    xt, calibration = xt[:args.test], x[:300]
    logits = model.predict(xt, batch_size=256, verbose=0)
    keras_top1 = logits.argmax(-1)
    r = {"model_file": args.model_file, "test": len(xt), "denylisted": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "default.tflite")
        export(model, path, "int8", representative_data=calibration, num_calibration_steps=300, progress=False)
        int8 = run_tflite(path, xt)
        r["agreement"] = float((int8.argmax(-1) == keras_top1).mean())
        r["logit_rmse"], r["logit_std"] = float(np.sqrt(((int8 - logits) ** 2).mean())), float(logits.std())
        r["by_margin"], r["median_margin_of_disagreeing"] = by_margin(logits, int8.argmax(-1))
        for op_type in (None,) + OP_TYPES:
            f = denylisted(model, calibration, op_type, os.path.join(tmp, f"{op_type}.tflite"))
            r["denylisted"][op_type or ""] = float((run_tflite(f, xt).argmax(-1) == keras_top1).mean())
            print(op_type, r["denylisted"][op_type or ""], flush=True)
    r.update(run.record())
    stem = os.path.splitext(os.path.basename(args.model_file))[0]
    write_result(args.out or os.path.join(HERE, "results", f"int8_near_ties_{stem}"), r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()

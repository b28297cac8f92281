"""Int8 post-training quantization (PTQ) vs quantization-aware training (QAT), accuracy on a task
that is not saturated (keras_mobile.data.digits.hard_digits, 10,000 unseen test images).

    python benchmarks/qat_vs_ptq.py                                   # MobileNetV3Small, 3 seeds
    python benchmarks/qat_vs_ptq.py --model MobileNetV4ConvS --size 32 --seeds 0 1

Per seed: train a float model from scratch (AdamW, cosine, `--epochs`), then from the same
weights two arms with the same extra budget (`--extra-epochs` at lr 1e-4):
  * control: float training goes on, then PTQ (min/max calibration on 300 training images);
  * QAT: keras_mobile.tflite.quantize_model, then training with fake quantization, then export.
Every int8 accuracy is the LiteRT interpreter's on the exported file (uint8 input). The PTQ
loss is control float - control PTQ; the QAT gain is QAT int8 - control PTQ (same budget, same
start), reported per seed with the paired standard error over the test images and as a mean
over seeds. Writes results/qat_vs_ptq.json and .md.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def paired(a_correct, b_correct):
    """Accuracy difference a - b on the same images and its standard error (paired)."""
    d = a_correct.astype(np.float64) - b_correct.astype(np.float64)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def qat_finetune(model, x, y, epochs, batch_size=64, lr=1e-4, hard_swish="mul"):
    """The QAT arm: `keras_mobile.tflite.quantize_model(model)` with its activation ranges
    calibrated on the first 256 training images, then `epochs` of Adam at `lr` with fake
    quantization (cross-entropy on logits or probabilities, as the model outputs). Returns the
    trained QAT model; `model` is left as it was."""
    import keras

    from keras_mobile.tflite import quantize_model
    from keras_mobile.training.recipes import outputs_logits
    qat = quantize_model(model, calibration_data=x[:256], calibration_steps=256, hard_swish=hard_swish)
    qat.compile(optimizer=keras.optimizers.Adam(lr),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)))
    qat.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=2)
    return qat


def run_seed(args, seed, data, workdir):
    import keras

    import keras_mobile
    from keras_mobile.tflite import export, run_tflite

    (x, y), (xt, yt) = data
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    keras.utils.set_random_seed(seed)
    model = getattr(keras_mobile, args.model)(weights=None, input_shape=(args.size, args.size, 3),
                                              classes=10, classifier_activation=None)
    steps = args.epochs * (len(x) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=args.lr,
                                                      warmup_steps=max(1, steps // 20))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4), loss=loss)
    t0 = time.time()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    start = model.get_weights()
    correct = {}

    def score(name, logits):
        correct[name] = np.argmax(logits, -1) == yt
        print(f"  seed {seed} {name}: {correct[name].mean():.4f}", flush=True)

    def ptq(name):
        path = os.path.join(workdir, f"{name}_{seed}.tflite")
        export(model, path, "int8", representative_data=x[:300], num_calibration_steps=300)
        score(name, run_tflite(path, xt))

    score("float", model.predict(xt, batch_size=256, verbose=0))
    ptq("ptq")
    qat = qat_finetune(model, x, y, args.extra_epochs, args.batch_size, hard_swish=args.hard_swish)
    score("qat_keras", qat.predict(xt, batch_size=256, verbose=0))
    path = os.path.join(workdir, f"qat_{seed}.tflite")
    export(qat, path, "int8")
    score("qat_int8", run_tflite(path, xt))
    model.set_weights(start)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    model.fit(x, y, batch_size=args.batch_size, epochs=args.extra_epochs, verbose=2)
    score("control_float", model.predict(xt, batch_size=256, verbose=0))
    ptq("control_ptq")
    result = {"seed": seed, "seconds": round(time.time() - t0, 1),
              "accuracy": {k: float(v.mean()) for k, v in correct.items()}}
    for key, a, b in (("ptq_loss", "float", "ptq"), ("control_ptq_loss", "control_float", "control_ptq"),
                      ("qat_gain_over_control_ptq", "qat_int8", "control_ptq"),
                      ("qat_int8_minus_control_float", "qat_int8", "control_float")):
        mean, se = paired(correct[a], correct[b])
        result[key] = {"mean": mean, "se": se}
    return result


def render(r):
    a = r["args"]
    lines = [f"# PTQ vs QAT: {a['model']} at {a['size']} px on hard digits "
             f"(QAT hard_swish={a.get('hard_swish', 'native')!r})",
             "", f"{a['train']} training images, {a['epochs']} float epochs + {a['extra_epochs']} extra "
             f"(control float / QAT) at lr 1e-4; 10,000 unseen test images; int8 = LiteRT on the "
             f"exported file. Differences in points, ± paired standard error over the test images.", "",
             "| seed | float | PTQ | control float | control PTQ | QAT Keras | QAT int8 | PTQ loss (control) "
             "| QAT gain over control PTQ |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pct = lambda v: f"{100 * v:.2f}"
    pm = lambda d: f"{100 * d['mean']:+.2f} ± {100 * d['se']:.2f}"
    for s in r["seeds"]:
        acc = s["accuracy"]
        lines.append(f"| {s['seed']} | " + " | ".join(pct(acc[k]) for k in (
            "float", "ptq", "control_float", "control_ptq", "qat_keras", "qat_int8"))
            + f" | {pm(s['control_ptq_loss'])} | {pm(s['qat_gain_over_control_ptq'])} |")
    m = r["mean"]
    lines += ["", f"Mean over seeds: PTQ loss {100 * m['ptq_loss']:.2f} points (first PTQ), "
              f"{100 * m['control_ptq_loss']:.2f} (control); QAT int8 - control PTQ "
              f"{100 * m['qat_gain_over_control_ptq']:+.2f}; QAT int8 - control float "
              f"{100 * m['qat_int8_minus_control_float']:+.2f}.", ""]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="MobileNetV3Small")
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--extra-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hard-swish", default="mul", choices=("mul", "native"),
                   help="quantize_model's hard_swish export form")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=os.path.join(HERE, "results", "qat_vs_ptq"))
    return p.parse_args(argv)


def main(argv=None):
    from keras_mobile.data.digits import hard_digits

    args = parse_args(argv)
    seeds = []
    with tempfile.TemporaryDirectory() as workdir:
        for seed in args.seeds:
            print(f"seed {seed}: rendering {args.train} + 10000 hard digits at {args.size} px", flush=True)
            data = hard_digits(args.train, 10000, args.size, seed=seed)
            seeds.append(run_seed(args, seed, data, workdir))
    keys = ("ptq_loss", "control_ptq_loss", "qat_gain_over_control_ptq", "qat_int8_minus_control_float")
    r = {"command": " ".join([os.path.basename(sys.argv[0])] + (argv or sys.argv[1:])),
         "args": vars(args) | {"out": None}, "seeds": seeds,
         "mean": {k: float(np.mean([s[k]["mean"] for s in seeds])) for k in keys}}
    from _setup import write_result   # benchmarks/ is on sys.path when run as a script
    write_result(args.out, r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()

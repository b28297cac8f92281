"""Does the default int8 PTQ export keep a trained model's top-1? One small model per family.

    python benchmarks/int8_agreement.py --cache /work/agree_cache

Per model: train from scratch on scikit-learn's bundled digits (keras_mobile.commands.demo.
load_digits_rgb: 1,437 training / 360 held-out digits, RGB, --size px; EfficientFormer at its fixed
224 px and reduced widths, NARROW), 7 of 8 training images perturbed afresh each epoch (`perturb`:
shift, brightness, noise, integer pixels); AdamW + cosine, the demo's recipe with a per-family
learning rate and epochs (RECIPES); cached as .keras in --cache keyed by model, size, epochs, lr
and seed, so a rerun only exports and measures. MobileOne is reparameterized after training (the
deployed form). Export float32, the default int8 file (`keras_mobile.tflite.export(model, path,
"int8", representative_data=<first --calibration training images>)`) and the plain converter graph
(TFLiteConverter as it comes: HARD_SWISH, int8 SOFTMAX, min/max calibration over all images, as
benchmarks/ptq_seeds.py calls it); with --cle-arms also the default int8 file with each
`cross_layer_equalization` setting (no_cle, cle_weights, cle_activations). Held-out inputs: each
of the 360 held-out digits as it is plus --variants fixed perturbed variants (`held_out`; digits
the model never trained on, variants it never saw), integer pixels as a camera gives them, run
through LiteRT (`run_tflite`). Agreement = int8 top-1 equal to Keras top-1, with a Wilson 95 %
interval (the variants of one digit are correlated, so the interval is optimistic; the number of
distinct digits among the disagreements is reported too). Where the default file agrees on less
than 99 %, the per-tensor drift of the int8 file against the float32 file
(benchmarks/ptq_diagnose.drift) on the disagreeing inputs names the tensors where the error grows
and how much of it is a per-channel mean (what a bias correction could cancel)
(were cross-layer equalization on by default, the float32 file is exported from the equalized
weights: the same function, the same tensors). --seed takes several seeds (one model each).
Writes results/int8_agreement.json and .md after each model.
"""
import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import commit, tensorflow_threads, write_result  # noqa: E402

# model -> (optimizer, peak learning rate, epochs). MobileOne with AdamW barely learns here (S0, 32 px,
# 4 epochs: 15 % train accuracy at 3e-4, 14 % after 10 epochs at 1e-3; 56.7 % held-out at 3e-3 last
# session) while SGD with momentum, its paper's optimizer, does (51 % after 4 epochs at 0.05). At peak
# 0.05, 30 epochs, seeds 0/1/2 reached 92.4 / 98.0 / 71.4 % Keras accuracy on the held-out images (seed 2
# with 7 of 48 stem channels dead); at 0.02 seeds 0/2 reach 97.1 / 97.4 %
# (results/int8_agreement_mobileone_recipe.md)
RECIPES = {"MobileNetV3Small": ("adamw", 3e-3, 20), "MobileNetV4ConvS": ("adamw", 3e-3, 20),
           "MobileOneS0": ("sgd", 0.02, 30), "EfficientFormerL1": ("adamw", 2e-3, 10)}
# EfficientFormer only builds at 224 px (attention biases learned for a 7x7 grid); L1 at full width
# took 6.0 s per batch of 32 to train here (load ~4), ~4.5 min an epoch on 1,437 images, so the small
# model of the family is L1's table at these stage widths (MLPs 4x), built by the search's TableSpace
NARROW = {"EfficientFormerL1": (16, 32, 48, 64)}


def input_size(name, size):
    """`size`, or the model's fixed input size (EfficientFormer: 224)."""
    from keras_mobile.applications.registry import spec_of
    return spec_of(name)[1].fixed_size or size


def build(name, size):
    """A fresh 10-class `name` at `size` px (at the NARROW widths for a family listed there)."""
    import keras_mobile
    model = getattr(keras_mobile, name)(weights=None, input_shape=(size, size, 3), classes=10)
    if name not in NARROW:
        return model
    from keras_mobile.search import TableSpace
    space = TableSpace.from_model(model)
    widths = NARROW[name]
    groups = sorted((k for k in space.knobs() if k.kind == "out"), key=lambda k: k.rows[0])
    for k, w in zip(groups, widths):
        space = space.set(k, w)
    for k in space.knobs():
        if k.kind == "mid":
            space = space.set(k, 4 * space.rows[k.rows[0]].out)
    return space.build().model


def wilson(k, n, z=1.96):
    """Wilson score interval (lo, hi) of a binomial proportion k / n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def perturb(images, rng):
    """Each image shifted by up to 1/16 of its side (2 px at 32 px; zero fill, the digits'
    background), scaled by a brightness gain in [0.75, 1], with Gaussian pixel noise (sigma 4 of
    255), rounded to integer pixels as a camera delivers them."""
    most = max(1, round(images.shape[1] / 16))
    out = np.zeros_like(images)
    for i, img in enumerate(images):
        dy, dx = rng.integers(-most, most + 1, 2)
        h, w = img.shape[:2]
        out[i, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            img[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
        out[i] = out[i] * rng.uniform(0.75, 1.0) + rng.normal(0, 4.0, img.shape)
    return np.round(np.clip(out, 0, 255)).astype("float32")


def held_out(x, y, variants, seed=7):
    """The held-out digits (x, y) as they are (rounded to integer pixels) plus `variants`
    `perturb`ed copies of each, from a fixed seed. Returns (images, labels, source digit index)."""
    rng = np.random.default_rng(seed)
    images = [np.round(x)] + [perturb(x, rng) for _ in range(variants)]
    return (np.concatenate(images), np.tile(y, 1 + variants),
            np.tile(np.arange(len(x)), 1 + variants))


def training_batches(x, y, batch_size, seed):
    """A keras PyDataset of shuffled training batches, 7 of 8 images `perturb`ed afresh each epoch
    (the held-out set's mix), so the held-out variants are inputs of the task the model learnt."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return int(np.ceil(len(x) / batch_size))

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            xb = np.round(x[idx])
            keep = self.rng.uniform(size=len(idx)) < 1 / 8
            xb = np.where(keep[:, None, None, None], xb, perturb(xb, self.rng))
            return xb, y[idx]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return Batches()


def trained_model(name, size, optimizer, epochs, lr, seed, cache, data):
    """The trained float model from `cache`, or trained now (and cached). Returns (model, seconds
    spent training, 0 when cached)."""
    import keras

    from keras_mobile.search.training import save_model
    from keras_mobile.training.seed import set_seed
    narrow = "_w" + "-".join(map(str, NARROW[name])) if name in NARROW else ""
    path = os.path.join(cache, f"{name}{narrow}_{size}px_aug_{optimizer}_e{epochs}_lr{lr:g}_s{seed}.keras")
    if os.path.exists(path):
        return keras.saving.load_model(path, compile=False), 0.0
    (x, y), (xt, yt) = data
    set_seed(seed, deterministic=False)
    model = build(name, size)
    steps = int(np.ceil(len(x) / 64)) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=lr, warmup_steps=steps // 10)
    opt = (keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=1e-4) if optimizer == "sgd" else
           keras.optimizers.AdamW(schedule, weight_decay=1e-4))
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.time()
    model.fit(training_batches(x, y, 64, seed), epochs=epochs, verbose=2, validation_data=(np.round(xt), yt))
    seconds = time.time() - t0
    os.makedirs(cache, exist_ok=True)
    save_model(model, path)
    return model, seconds


# --cle-arms: the default int8 export with each cross_layer_equalization setting
CLE_ARMS = {"no_cle": False, "cle_weights": "weights", "cle_activations": "activations"}


def exports(model, calibration, workdir, cle_arms=False):
    """{graph: path} of the float32, default int8 and plain converter int8 files of `model`
    (`cle_arms`: also the default int8 file with each CLE_ARMS setting)."""
    from keras_mobile.files import write_atomic
    from keras_mobile.tflite import export
    from keras_mobile.tflite.equalization import equalized
    from keras_mobile.tflite.export import CLE_DEFAULT, _keras_messages_to_absl, converter_for
    settings = {"default": {}}
    settings.update({g: {"cross_layer_equalization": v} for g, v in CLE_ARMS.items()} if cle_arms else {})
    paths = {g: os.path.join(workdir, f"{model.name}_{g}.tflite") for g in ("float32", "converter", *settings)}
    # the float32 file holds the weights the default int8 file was converted from (cross-layer equalized:
    # the same function), so the drift compares the same tensors
    cle = "weights" if CLE_DEFAULT is True else CLE_DEFAULT
    with equalized(model, [calibration] if cle == "activations" else None) if cle else contextlib.nullcontext():
        export(model, paths["float32"], "float32", progress=False)
    for g, kwargs in settings.items():
        export(model, paths[g], "int8", representative_data=calibration, num_calibration_steps=len(calibration),
               progress=False, **kwargs)
    conv = converter_for(model, "int8", calibration, "uint8", "float32", len(calibration), progress=False,
                         drop_calibration_outliers=False)
    with _keras_messages_to_absl():                # no signature dump in the log
        write_atomic(paths["converter"], conv.convert())
    return paths


def agreement(pred, reference, source):
    """Share of equal top-1, its Wilson interval and the distinct source digits that differ."""
    same = pred == reference
    lo, hi = wilson(int(same.sum()), len(same))
    return {"agreement": float(same.mean()), "ci95": [lo, hi], "differ": int((~same).sum()), "n": int(len(same)),
            "distinct_digits_differ": int(len(set(source[~same].tolist())))}


def agreement_cell(a):
    """An `agreement` result as the markdown cell "99.12 % [98.70, 99.41]"."""
    return f"{100 * a['agreement']:.2f} % [{100 * a['ci95'][0]:.2f}, {100 * a['ci95'][1]:.2f}]"


def measure(args, name, seed, size, data, test, workdir):
    import keras_mobile.tflite as kt
    from keras_mobile.reparameterize import needs_reparameterization, reparameterize
    from ptq_diagnose import drift
    optimizer, lr, epochs = RECIPES.get(name, ("adamw", 3e-3, 20))
    lr, epochs = args.lr or lr, args.epochs or epochs
    model, train_seconds = trained_model(name, size, optimizer, epochs, lr, seed, args.cache, data)
    if needs_reparameterization(model):
        model = reparameterize(model)
    xt, yt, source = test
    keras_top1 = np.argmax(model.predict(xt, batch_size=128, verbose=0), -1)
    t0 = time.time()
    paths = exports(model, np.round(data[0][0][:args.calibration]), workdir, args.cle_arms)
    r = {"model": name, "seed": seed, "size": size, "widths": NARROW.get(name), "params": int(model.count_params()), "optimizer": optimizer, "epochs": epochs, "lr": lr, "train_seconds": round(train_seconds, 1),
         "export_seconds": round(time.time() - t0, 1), "accuracy": {"keras": float((keras_top1 == yt).mean())},
         "agreement": {}}
    preds = {}
    for graph, path in paths.items():
        try:
            preds[graph] = np.argmax(kt.run_tflite(path, xt), -1)
        except RuntimeError as e:       # e.g. the plain converter graph of a file XNNPACK cannot prepare
            r["accuracy"][graph] = r["agreement"][graph] = None
            r.setdefault("unrunnable", {})[graph] = " ".join(str(e).split())
            continue
        r["accuracy"][graph] = float((preds[graph] == yt).mean())
        r["agreement"][graph] = agreement(preds[graph], keras_top1, source)
    if r["agreement"]["default"]["agreement"] < 0.99 and args.drift_images:
        differ = np.flatnonzero(preds["default"] != keras_top1)[:args.drift_images]
        rows = drift(paths["float32"], paths["default"], xt[differ])
        r["drift"] = rows
        # the model's output (the float softmax) left out: its error on near-ties says nothing of a layer
        r["worst_steps"] = sorted(({"tensor": b["tensor"], "rel_rmse": b["rel_rmse"],
                                    "growth": b["rel_rmse"] - a["rel_rmse"],
                                    "channel_mean_share": b["channel_mean_share"]} for a, b in zip(rows, rows[1:-1])),
                                  key=lambda d: -d["growth"])[:6]
    r["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps({k: v for k, v in r.items() if k != "drift"}, indent=1), flush=True)
    return r


def render(r):
    a = r["args"]
    lines = [f"# Default int8 PTQ vs Keras top-1, one trained small model per family (digits)", "",
             f"Held-out: {r['held_out']} images = the 360 held-out digits + {a['variants']} unseen perturbed variants "
             "of each (shift <= 1/16 of the side, brightness x0.75-1, noise; integer pixels); training perturbs 7 of 8 "
             "images the same way, afresh each epoch. Calibration: the first "
             f"{a['calibration']} training images. Agreement = int8 top-1 equal to Keras top-1 (LiteRT on the file), "
             "Wilson 95 % interval (variants of one digit are correlated: the interval is optimistic). default = "
             "`keras_mobile.tflite.export(model, path, \"int8\", representative_data=...)`; converter = the plain "
             "TFLiteConverter graph (HARD_SWISH, int8 SOFTMAX, min/max over all calibration images). Load = 1-min "
             "load average after the model (2 cores, shared).", "",
             f"Command: `python benchmarks/{r['command']}`" + (f" (commit {r['commit']})" if r.get("commit") else ""), "",
             "| model | seed | px | optimizer, epochs, lr | Keras acc | default int8 acc | converter int8 acc | default agreement [95 % CI] "
             "| differ (digits) | converter agreement [95 % CI] | differ (digits) | train s | load |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in r["models"]:
        acc, ag = m["accuracy"], m["agreement"]
        cell = lambda g: ((agreement_cell(ag[g]), f"{ag[g]['differ']} ({ag[g]['distinct_digits_differ']})") if ag[g]
                          else ("LiteRT could not run it", ""))
        d, c = cell("default"), cell("converter")
        label = m["model"] + (f" at widths {'-'.join(map(str, m['widths']))}" if m.get("widths") else "")
        conv_acc = "-" if acc["converter"] is None else f"{100 * acc['converter']:.2f}"
        lines.append(f"| {label} | {m.get('seed', a['seed'])} | {m['size']} | {m.get('optimizer', 'adamw')}, {m['epochs']}, {m['lr']:g} | {100 * acc['keras']:.2f} | {100 * acc['default']:.2f} | "
                     f"{conv_acc} | {d[0]} | {d[1]} | {c[0]} | {c[1]} | {m['train_seconds']:.0f} | "
                     f"{m['load_after'][0]} |")
    for m in r["models"]:
        for graph, why in m.get("unrunnable", {}).items():
            lines += ["", f"{m['model']} seed {m.get('seed', a['seed'])}: LiteRT could not run the {graph} file: {why}"]
    arms = [m for m in r["models"] if all(g in m["agreement"] for g in CLE_ARMS)]
    if arms:
        lines += ["", "Cross-layer equalization (`export(..., cross_layer_equalization=...)`): agreement of the "
                      "default int8 file with each setting (False; \"weights\": DFQ's data-free ranges; "
                      "\"activations\": calibration peaks of the tensor between the two layers), same model:", "",
                  "| model | seed | Keras acc | no CLE | CLE weights (DFQ) | CLE activations | load |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for m in arms:
            cells = " | ".join(agreement_cell(m["agreement"][g]) for g in CLE_ARMS)
            lines.append(f"| {m['model']} | {m.get('seed', a['seed'])} | {100 * m['accuracy']['keras']:.2f} | {cells} | "
                         f"{m['load_after'][0]} |")
    for m in r["models"]:
        if m.get("worst_steps"):
            lines += ["", f"{m['model']}: tensors where the default file's error (relative RMSE vs the float32 file, on "
                          "the disagreeing inputs) grows most:"]
            lines += [f"- `{w['tensor']}`: +{w['growth']:.3f} (to {w['rel_rmse']:.3f})"
                      + (f"; per-channel mean {100 * w['channel_mean_share']:.0f} % of its squared error"
                         if "channel_mean_share" in w else "") for w in m["worst_steps"]]
    for note in r.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def run_model(args, name, seed, workdir):
    """`measure` of model `name` trained from `seed` on the digits at its input size."""
    from keras_mobile.commands.demo import load_digits_rgb
    size = input_size(name, args.size)
    data = load_digits_rgb(size)
    return measure(args, name, seed, size, data, held_out(*data[1], args.variants), workdir)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(RECIPES))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=None, help="default: the family's entry in RECIPES")
    p.add_argument("--lr", type=float, default=None, help="default: the family's entry in RECIPES")
    p.add_argument("--seed", type=int, nargs="+", default=[0], help="training seeds (one model each)")
    p.add_argument("--variants", type=int, default=7, help="perturbed copies of each held-out digit")
    p.add_argument("--calibration", type=int, default=200)
    p.add_argument("--cle-arms", action="store_true",
                   help="also export the default int8 file with each cross_layer_equalization setting (CLE_ARMS)")
    p.add_argument("--drift-images", type=int, default=40, help="0: no drift report")
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/keras_mobile/int8_agreement"),
                   help="folder of the trained .keras models (reused by later runs)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "int8_agreement"))
    return p.parse_args(argv)


def main(argv=None):
    tensorflow_threads(1)
    import bench_workers
    args = parse_args(argv)
    r = json.load(open(args.out + ".json")) if os.path.exists(args.out + ".json") else {"models": []}
    r.update({"command": " ".join(["int8_agreement.py"] + (argv or sys.argv[1:])), "args": vars(args),
              "commit": commit(), "held_out": 360 * (1 + args.variants), "load_before": os.getloadavg()})
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            for seed in args.seed:
                m = run_model(args, name, seed, workdir)
                same = lambda o: o["model"] == name and o.get("seed", 0) == seed  # noqa: E731
                old = [o for o in r["models"] if same(o)]
                if not m["train_seconds"] and old:          # a cached model: keep when it was trained
                    m["train_seconds"] = old[0]["train_seconds"]
                r["models"] = [o for o in r["models"] if not same(o)] + [m]
                write_result(args.out, r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()

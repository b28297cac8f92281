"""Does the default int8 export keep the top-1 of a model fine-tuned with examples/finetune.py on photos?

    pip install -e ".[data]"        # scikit-image: its bundled photos are the data
    python benchmarks/int8_agreement_photos.py --seeds 0 1 2 3

Issue 15's second goal names this case: a MobileNetV4ConvS trained from scratch with
`examples/finetune.py --data folder:...` on crops of scikit-image's bundled photos, whose int8
file agreed with Keras on 95.5-97.7 % of held-out images in three of four runs (2026-12-02).

Data: one class per photo (PHOTOS), square crops of a random side (25-60 % of the photo's short
side) at random places, resized to --size px and written as PNG into a class-per-folder tree, as
a user's folder dataset is; --per-class training crops (finetune.py holds 20 % of them out for
validation) and a separate set of --test crops per class from other random places (unseen crops
of the same scenes). Per seed, finetune.py runs as a user runs it (a subprocess, --weights none,
its own int8 export calibrated on 100 training images); this script then loads the final weights
and exports float32, the default int8 file and the plain converter graph
(int8_agreement.exports) and measures each file's top-1 against Keras on the test crops (LiteRT),
with Wilson 95 % intervals (int8_agreement.agreement). Writes results/int8_agreement_photos.json
and .md after every seed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import Run, run_line, tensorflow_threads, write_result  # noqa: E402

# sorted: finetune.py's folder pipeline numbers the classes in the sorted order of the folder names
PHOTOS = tuple(sorted(("astronaut", "camera", "coffee", "chelsea", "rocket", "immunohistochemistry",
                       "hubble_deep_field", "coins", "brick", "grass", "gravel", "retina")))


def photo(name):
    """scikit-image's bundled photo `name` as an RGB uint8 array."""
    import skimage.data
    a = getattr(skimage.data, name)()
    return np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a[..., :3]


def crops(image, count, size, rng):
    """`count` square crops of `image` (side 25-60 % of its short side, random place) at `size` px."""
    from PIL import Image
    h, w = image.shape[:2]
    out = []
    for _ in range(count):
        side = int(rng.uniform(0.25, 0.6) * min(h, w))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        tile = Image.fromarray(image[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
        out.append(np.asarray(tile))
    return np.stack(out)


def make_dataset(root, per_class, test, size, seed=0):
    """Writes root/train/<photo>/*.png and returns the test crops (x, y) as arrays."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, name in enumerate(PHOTOS):
        image = photo(name)
        folder = os.path.join(root, "train", name)
        os.makedirs(folder, exist_ok=True)
        for i, tile in enumerate(crops(image, per_class, size, rng)):
            Image.fromarray(tile).save(os.path.join(folder, f"{i:04d}.png"))
        xs.append(crops(image, test, size, rng))
        ys += [label] * test
    return np.concatenate(xs).astype("float32"), np.array(ys)


def finetune(args, seed, data_dir, out):
    """Runs examples/finetune.py as a user would; returns its metrics.json."""
    cmd = [sys.executable, os.path.join(HERE, "..", "examples", "finetune.py"), "--model", args.model,
           "--data", "folder:" + data_dir, "--weights", "none", "--size", str(args.size), "--epochs", str(args.epochs),
           "--seed", str(seed), "--out", out, "--verbose", "2"]
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=os.path.join(HERE, "..")))
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f), " ".join(cmd[1:])


def run_seed(args, seed, data_dir, test, workdir):
    import keras_mobile.tflite as kt
    from keras_mobile import training
    from int8_agreement import agreement, exports
    out = os.path.join(workdir, f"seed{seed}")
    t0 = time.time()
    metrics, cmd = finetune(args, seed, os.path.join(data_dir, "train"), out)
    with open(os.path.join(out, "labels.txt")) as f:
        names = f.read().split()
    if names != list(PHOTOS):
        raise RuntimeError(f"finetune.py numbered the classes {names}, the test labels {list(PHOTOS)}")
    model = training.build_finetune_model(args.model, len(PHOTOS), weights=None, input_size=args.size)
    model.load_weights(os.path.join(out, "final.weights.h5"))
    xt, yt = test
    keras_top1 = np.argmax(model.predict(xt, batch_size=64, verbose=0), -1)
    calibration = calibration_images(os.path.join(data_dir, "train"), args.size)
    paths = exports(model, calibration, workdir)
    r = {"seed": seed, "finetune_command": cmd, "val_accuracy": metrics["val_accuracy"],
         "finetune_tflite": metrics.get("tflite"), "accuracy": {"keras": float((keras_top1 == yt).mean())},
         "agreement": {}, "seconds": None}
    source = np.arange(len(yt))          # every test crop is its own source
    for graph, path in paths.items():
        pred = np.argmax(kt.run_tflite(path, xt), -1)
        r["accuracy"][graph] = float((pred == yt).mean())
        r["agreement"][graph] = agreement(pred, keras_top1, source)
    r["seconds"] = round(time.time() - t0, 1)
    r["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(r, indent=1), flush=True)
    return r


def calibration_images(train_dir, size, count=100):
    """`count` training crops drawn at random (fixed seed), as finetune.py's export calibrates on
    training images."""
    from PIL import Image
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(train_dir) for f in fs)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(paths), size=min(count, len(paths)), replace=False)
    return np.stack([np.asarray(Image.open(paths[i]).convert("RGB").resize((size, size))) for i in pick]).astype("float32")


def render(r):
    from int8_agreement import agreement_cell
    a = r["args"]
    lines = [f"# int8 vs Keras top-1 after `examples/finetune.py` on scikit-image photos ({a['model']}, "
             f"{a['size']} px, from scratch)", "",
             f"{len(PHOTOS)} classes (one per bundled photo), {a['per_class']} random crops per class for finetune.py "
             f"(80/20 train/validation), {a['test']} other random crops per class as the test set "
             f"({a['test'] * len(PHOTOS)} images). default = `keras_mobile.tflite.export(model, path, \"int8\", "
             "representative_data=<100 training crops>)`; converter = the plain TFLiteConverter graph (min/max over the "
             "same 100 images); finetune.py's own int8 file is the default export too, measured by finetune.py on "
             "its validation images. Agreement = int8 top-1 equal to Keras top-1 on the test crops (LiteRT), Wilson "
             "95 % interval. Load = 1-min load average after the seed (2 cores, shared).", "",
             run_line(r), "",
             "| seed | Keras val acc | Keras test acc | default int8 test acc | default agreement [95 % CI] | differ "
             "| converter agreement [95 % CI] | differ | finetune.py's int8 agreement (val) | s | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in r["seeds"]:
        ag = s["agreement"]
        own = s.get("finetune_tflite") or {}
        lines.append(f"| {s['seed']} | {100 * s['val_accuracy']:.2f} | {100 * s['accuracy']['keras']:.2f} | "
                     f"{100 * s['accuracy']['default']:.2f} | {agreement_cell(ag['default'])} | {ag['default']['differ']} | "
                     f"{agreement_cell(ag['converter'])} | {ag['converter']['differ']} | "
                     f"{100 * own.get('agreement_with_keras', float('nan')):.2f} % of {own.get('images', '?')} | "
                     f"{s['seconds']:.0f} | {s['load_after'][0]} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    tensorflow_threads(1)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="MobileNetV4ConvS")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--test", type=int, default=100, help="test crops per class")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--out", default=os.path.join(HERE, "results", "int8_agreement_photos"))
    args = p.parse_args(argv)
    run = Run("int8_agreement_photos.py", argv)
    r = {"args": vars(args), "photos": list(PHOTOS), "seeds": []}
    with tempfile.TemporaryDirectory() as workdir:
        data_dir = os.path.join(workdir, "photos")
        test = make_dataset(data_dir, args.per_class, args.test, args.size)
        for seed in args.seeds:
            r["seeds"].append(run_seed(args, seed, data_dir, test, workdir))
            r.update(run.record())
            write_result(args.out, r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()

"""The set-up detect.py and segment.py share: their common options, seeding, the shapes-or-tfds
choice and an Adam + cosine-decay compile. Not an example itself; the scripts import it from
their own folder, so each still runs as `python examples/detect.py` from anywhere."""
import argparse
import json
import os

import numpy as np


def data_source(value):
    """--data's type: 'shapes' or 'tfds:NAME', refused by the parser (exit 2) before anything is
    imported or created."""
    if value != "shapes" and not (value.startswith("tfds:") and len(value) > 5):
        raise argparse.ArgumentTypeError(f"--data must be 'shapes' or 'tfds:NAME', got {value!r}")
    return value


def parser(doc, backbone, num_train, epochs, test_split):
    """An ArgumentParser with the options both head examples take (their defaults differ);
    the script adds its own."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data", default="shapes", type=data_source, help="'shapes' or 'tfds:NAME'")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    p.add_argument("--test-split", default=test_split)
    p.add_argument("--backbone", default=backbone)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--num-train", type=int, default=num_train)
    p.add_argument("--num-test", type=int, default=100)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--num-png", type=int, default=4)
    p.add_argument("--no-tflite", action="store_true")
    p.add_argument("--seed", type=int, default=0, help="weights/training seed (same seed, same numbers)")
    return p


def start(args):
    """Makes the output folder and seeds the run."""
    from keras_mobile.training import set_seed
    os.makedirs(args.out, exist_ok=True)
    set_seed(args.seed)


def tfds_name(args):
    """None for --data shapes, else the tensorflow-datasets name of --data tfds:NAME (`data_source` checked it)."""
    return None if args.data == "shapes" else args.data[5:]


def compile_adam_cosine(model, args, num_images):
    """Adam with the learning rate decaying from --lr to 0 over the run (cosine)."""
    import keras
    steps = max(1, args.epochs * int(np.ceil(num_images / args.batch_size)))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.lr, steps)))
    # the Adam slots built eagerly: created inside the first traced train step they cost
    # 10-35 s more on 2 CPU cores (SSDLite, 64 px, measured)
    model.optimizer.build(model.trainable_variables)


def save_metrics(args, result):
    """Writes `result` to OUT/metrics.json and returns it."""
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result

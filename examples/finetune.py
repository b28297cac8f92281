"""Fine-tune a keras_mobile classifier on your images, evaluate it, export an int8 TFLite file,
check the TFLite file with the LiteRT interpreter, and save a PNG of predictions + metrics JSON.

    python examples/finetune.py --model MobileNetV4ConvS --data folder:photos/ --epochs 10
    python examples/finetune.py --model MobileOneS0 --data tfds:tf_flowers --size 224
    python examples/finetune.py --data digits --weights none --size 64   # offline, scikit-learn digits

--data: folder:PATH (one sub-folder per class; 20% held out), tfds:NAME (train split, 20% held
out unless it has a test/validation split) or digits (scikit-learn's 1,797 8x8 handwritten
digits, upscaled to RGB; 20% held out). Re-running with the same --out resumes an interrupted
run (BackupAndRestore); the best weights are in OUT/ckpt/best.weights.h5.
"""
import argparse
import json
import os
import time

import keras
import numpy as np


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="MobileNetV4ConvS")
    p.add_argument("--data", default="digits", help="folder:PATH | tfds:NAME | digits")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=None, help="input side (default: the checkpoint's)")
    p.add_argument("--weights", default="imagenet",
                   help="imagenet | a timm tag | a .safetensors/.weights.h5 file | none")
    p.add_argument("--freeze-epochs", type=int, default=0,
                   help="train only the new classifier for this many epochs first")
    p.add_argument("--flip", choices=("auto", "yes", "no"), default="auto",
                   help="random horizontal flips (auto: off for digits)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many training images")
    p.add_argument("--precision", default="auto",
                   help="float32 | mixed_float16 | mixed_bfloat16 | auto (bf16 on TPU, fp16 on GPU)")
    p.add_argument("--export", default="int8", choices=("int8", "float32", "none"))
    p.add_argument("--tflite-eval", type=int, default=500, help="held-out images run through LiteRT")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds weights, data order, augmentation and the digits split; the same seed gives "
                        "the same numbers on one machine (TensorFlow op determinism on)")
    p.add_argument("--out", default="finetune_out")
    p.add_argument("--verbose", type=int, default=2)
    return p.parse_args(argv)


def load_digits_split(seed=0):
    """scikit-learn digits as [0, 255] grayscale 8x8 images, shuffled, split 80/20."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0 * 255.0).astype("float32")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], d.target[order].astype("int32")
    n = int(0.8 * len(x))
    return (x[:n], y[:n]), (x[n:], y[n:]), [str(i) for i in range(10)]


def load_data(args, size, augment):
    """(train_ds, val_ds, class_names) pipelines of raw-pixel images at `size`."""
    from keras_mobile import training
    common = dict(batch_size=args.batch_size, augment=augment, seed=args.seed)
    if args.data == "digits":
        (xt, yt), (xv, yv), names = load_digits_split(args.seed)
        if args.limit:
            xt, yt = xt[:args.limit], yt[:args.limit]
        train = training.array_dataset(xt, yt, size, num_classes=10, training=True, **common)
        val = training.array_dataset(xv, yv, size, num_classes=10, training=False, batch_size=args.batch_size)
        return train, val, names
    if args.data.startswith("folder:"):
        train, val = training.image_folder_dataset(args.data[7:], size, validation_split=0.2, **common)
        if args.limit:
            train = train.take(max(1, args.limit // args.batch_size))
        return train, val, val.class_names
    if args.data.startswith("tfds:"):
        import tensorflow_datasets as tfds
        name = args.data[5:]
        splits = tfds.builder(name, data_dir=args.data_dir).info.splits
        held = next((s for s in ("validation", "test") if s in splits), None)
        train_split = "train" if held else "train[:80%]"
        if args.limit:
            train_split = f"train[:{args.limit}]" if held else f"train[:{min(args.limit, int(0.8 * splits['train'].num_examples))}]"
        train = training.tfds_dataset(name, train_split, size, training=True, data_dir=args.data_dir, **common)
        val = training.tfds_dataset(name, held or "train[80%:]", size, training=False,
                                    data_dir=args.data_dir, batch_size=args.batch_size)
        return train, val, train.class_names
    raise SystemExit(f"--data must be folder:PATH, tfds:NAME or digits, got {args.data!r}")


class EpochTimer(keras.callbacks.Callback):
    """Records seconds per epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.time() - self._t)


def arrays(ds, limit):
    """First `limit` (images, integer labels) of a batched pipeline, as numpy."""
    xs, ys, n = [], [], 0
    for x, y in ds.as_numpy_iterator():
        xs.append(x)
        ys.append(y.argmax(-1))
        n += len(x)
        if n >= limit:
            break
    return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]


def draw(images, labels, preds, names, path, cols=8):
    """A grid of images captioned with the prediction (green right, red wrong)."""
    from PIL import Image, ImageDraw
    cell = 96
    rows = int(np.ceil(len(images) / cols))
    canvas = Image.new("RGB", (cols * cell, rows * (cell + 14)), "white")
    d = ImageDraw.Draw(canvas)
    for i, (im, y, p) in enumerate(zip(images, labels, preds)):
        r, c = divmod(i, cols)
        tile = Image.fromarray(np.clip(im, 0, 255).astype("uint8")).resize((cell - 8, cell - 8))
        canvas.paste(tile, (c * cell + 4, r * (cell + 14) + 2))
        d.text((c * cell + 6, r * (cell + 14) + cell - 4), f"{names[p]}"[:14],
               fill=(0, 140, 0) if p == y else (220, 0, 0))
    canvas.save(path)
    return path


def main(argv=None):
    args = parse(argv)
    os.makedirs(args.out, exist_ok=True)
    from keras_mobile import training
    from keras_mobile.tflite import export, run_tflite

    training.set_seed(args.seed)
    policy = training.mixed_precision(args.precision)
    strategy = training.strategy()
    weights = None if args.weights.lower() == "none" else args.weights
    flip = args.flip == "yes" or (args.flip == "auto" and args.data != "digits")
    from keras_mobile.applications.registry import entry
    family = entry(args.model).family
    fine = training.recipe(args.model, 1, 1, pretrained=weights is not None)
    augment = training.Augment(flip=flip, crop_scale=fine.augment.crop_scale if flip else (0.7, 1.0),
                               mixup_alpha=fine.augment.mixup_alpha, cutmix_alpha=fine.augment.cutmix_alpha)

    def build():
        return training.build_finetune_model(args.model, num_classes, weights=weights,
                                             input_size=args.size, dropout=fine.dropout,
                                             drop_path_rate=fine.drop_path_rate)

    # the size comes from the model (checkpoint default) unless given
    size = args.size or training.input_size(training.build_finetune_model(args.model, 2, weights=None))
    train, val, names = load_data(args, size, augment)
    num_classes = len(names)
    steps = int(train.cardinality())
    if steps < 1:
        raise SystemExit(f"fewer training images than one batch of {args.batch_size}")
    print(f"{args.model} ({family}), {num_classes} classes, {size}x{size}, {steps} steps/epoch, "
          f"precision {policy}, strategy {type(strategy).__name__}")

    timer = EpochTimer()
    history = {}
    with strategy.scope():
        model = build()
        if args.freeze_epochs:
            r = training.recipe(args.model, args.freeze_epochs, steps, args.batch_size,
                                pretrained=weights is not None, augment=augment, ema=False)
            r.compile(training.freeze_backbone(model))
            h = model.fit(train, validation_data=val, epochs=args.freeze_epochs, verbose=args.verbose,
                          callbacks=[timer])
            history = {k: list(v) for k, v in h.history.items()}
            training.unfreeze(model)
        r = training.recipe(args.model, max(1, args.epochs - args.freeze_epochs), steps,
                            args.batch_size, pretrained=weights is not None, augment=augment)
        r.compile(model)
        h = model.fit(train, validation_data=val, epochs=args.epochs, initial_epoch=args.freeze_epochs,
                      verbose=args.verbose,
                      callbacks=r.callbacks(os.path.join(args.out, "ckpt")) + [timer])
        for k, v in h.history.items():
            history.setdefault(k, []).extend(v)

    loss, acc = model.evaluate(val, verbose=0)[:2]
    epoch_s = timer.seconds[1:] or timer.seconds   # the first epoch includes tracing
    results = {"model": args.model, "data": args.data, "seed": args.seed, "size": size, "classes": num_classes,
               "weights": args.weights, "precision": policy, "epochs": args.epochs,
               "history": history, "val_loss": float(loss), "val_accuracy": float(acc),
               "seconds_per_epoch": float(np.median(epoch_s)) if epoch_s else None,
               "train_images_per_second": float(steps * args.batch_size / np.median(epoch_s)) if epoch_s else None}
    model.save_weights(os.path.join(args.out, "final.weights.h5"))

    x_val, y_val = arrays(val, args.tflite_eval)
    keras_pred = model.predict(x_val, verbose=0, batch_size=args.batch_size).argmax(-1)
    results["keras_accuracy_on_tflite_eval_images"] = float((keras_pred == y_val).mean())
    preds = keras_pred
    if args.export != "none":
        if policy != "float32":   # export a float32 copy: TFLite wants float32 graphs
            keras.mixed_precision.set_global_policy("float32")
            exported = build()
            exported.set_weights(model.get_weights())
        else:
            exported = model
        path = os.path.join(args.out, f"{args.model}_{args.export}.tflite")
        x_calib, _ = arrays(train, 100)   # representative data: training images
        report = export(exported, path, quantization=args.export,
                        representative_data=x_calib if args.export == "int8" else None,
                        labels=names)   # TFLite metadata: Android (MediaPipe / Task Library) reads the labels
        with open(os.path.join(args.out, "labels.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        print(report)
        tfl = run_tflite(path, x_val)
        preds = tfl.argmax(-1)
        results["tflite"] = {"path": path, "bytes": os.path.getsize(path), "quantization": args.export,
                             "accuracy": float((preds == y_val).mean()),
                             "agreement_with_keras": float((preds == keras_pred).mean()),
                             "images": int(len(y_val))}
    results["predictions_png"] = draw(x_val[:32], y_val[:32], preds[:32], names,
                                      os.path.join(args.out, "predictions.png"))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: v for k, v in results.items() if k != "history"}, indent=1))
    return results


if __name__ == "__main__":
    main()

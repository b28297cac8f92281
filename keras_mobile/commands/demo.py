"""`keras-mobile demo`: the whole path offline (a few minutes on 2 CPU cores; see the README).

Builds MobileNetV4ConvS, trains it on scikit-learn's bundled handwritten digits (upscaled to
RGB images), classifies held-out images, exports float32 and int8 TFLite files, checks them
with the LiteRT interpreter and draws a picture of the predictions.
"""
import json
import os
import time

import numpy as np

help = "train MobileNetV4ConvS on bundled digits, classify held-out images, export + verify TFLite"


def add_arguments(p):
    from keras_mobile.commands._common import weights_arg
    p.add_argument("--model", default="MobileNetV4ConvS")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--train-images", type=int, default=None,
                   help="train on the first N of the 1,437 training digits (default: all; a quick try)")
    p.add_argument("--out", default="outputs/demo")
    p.add_argument("--weights", type=weights_arg, default=None,
                   help="start from these weights (e.g. 'imagenet' when online); default: random init")


def load_digits_rgb(size):
    """scikit-learn's 8x8 digits as [0, 255] RGB images of `size` x `size`, split 80/20."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise SystemExit("the demo needs scikit-learn: pip install scikit-learn "
                         "(or the extra: 'keras-mobile-vision[data]')") from e
    import tensorflow as tf
    d = load_digits()
    x = (d.images / 16.0 * 255.0).astype("float32")[..., None]
    x = tf.image.resize(x, (size, size), method="bilinear").numpy()
    x = np.repeat(x, 3, axis=-1)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], d.target[order].astype("int32")
    n = int(0.8 * len(x))
    return (x[:n], y[:n]), (x[n:], y[n:])


def run(args):
    import keras

    from keras_mobile.applications.registry import get_model
    from keras_mobile.tflite import export, run_tflite

    ctor = get_model(args.model)   # a bad name fails before any work
    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    if args.train_images is not None and args.train_images < 64:
        raise ValueError(f"--train-images must be at least 64 (one batch), got {args.train_images}")
    os.makedirs(args.out, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_digits_rgb(args.image_size)
    x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    model = ctor(weights=args.weights, include_top=args.weights is None,
                 input_shape=(args.image_size, args.image_size, 3), classes=10)
    if args.weights is not None:   # pretrained trunk + new 10-class head
        x = keras.layers.GlobalAveragePooling2D()(model.output)
        model = keras.Model(model.input, keras.layers.Dense(10, activation="softmax")(x))
    steps = int(np.ceil(len(x_train) / 64)) * args.epochs
    model.compile(optimizer=keras.optimizers.AdamW(
                      keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=3e-3,
                                                             warmup_steps=steps // 10), weight_decay=1e-4),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"training {args.model} on {len(x_train)} digit images ({args.image_size}x{args.image_size}) "
          f"for {args.epochs} epochs")
    t0 = time.time()
    hist = model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=2,
                     validation_data=(x_test, y_test))
    train_s = time.time() - t0
    keras_pred = model.predict(x_test, verbose=0).argmax(-1)
    keras_acc = float((keras_pred == y_test).mean())
    from keras_mobile.files import save_atomic, write_atomic
    save_atomic(os.path.join(args.out, "model.keras"), model.save)

    results = {"model": args.model, "train_seconds": round(train_s, 1), "keras_accuracy": keras_acc,
               "loss_first_epoch": hist.history["loss"][0], "loss_last_epoch": hist.history["loss"][-1]}
    preds = {}
    for quant in ("float32", "int8"):
        path = os.path.join(args.out, f"{args.model}_{quant}.tflite")
        report = export(model, path, quantization=quant,
                        representative_data=x_train[:200] if quant == "int8" else None)
        out = run_tflite(path, x_test)
        preds[quant] = out.argmax(-1)
        results[f"tflite_{quant}"] = {"path": path, "bytes": os.path.getsize(path),
                                      "accuracy": float((preds[quant] == y_test).mean())}
        print(report)
    results["int8_vs_keras_top1_agreement"] = float((preds["int8"] == keras_pred).mean())
    results["picture"] = _draw(x_test[:24], y_test[:24], preds["int8"][:24], args.out)
    write_atomic(os.path.join(args.out, "results.json"), json.dumps(results, indent=1).encode())
    print(json.dumps(results, indent=1))
    return 0


def _draw(images, labels, preds, out):
    """A grid of held-out digits labelled with the int8 TFLite prediction (red = wrong)."""
    from PIL import Image, ImageDraw
    cell, cols = 80, 8
    rows = int(np.ceil(len(images) / cols))
    canvas = Image.new("RGB", (cols * cell, rows * (cell + 16)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (img, y, p) in enumerate(zip(images, labels, preds)):
        r, c = divmod(i, cols)
        tile = Image.fromarray(img.astype("uint8")).resize((cell - 8, cell - 8))
        canvas.paste(tile, (c * cell + 4, r * (cell + 16) + 4))
        draw.text((c * cell + 8, r * (cell + 16) + cell - 2), f"pred {p}",
                  fill="green" if p == y else "red")
    from keras_mobile.files import save_atomic
    return save_atomic(os.path.join(out, "predictions.png"), canvas.save)

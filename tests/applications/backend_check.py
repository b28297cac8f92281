"""Run in a fresh interpreter with KERAS_BACKEND set (tests/applications/test_backend_parity.py).

argv: a JSON file {"cases": [[constructor, kwargs, fixture safetensors, input.npy, logits.npy,
timm name, timm trainable params]], "finetune": fixture path or null, "tmp": folder}.
Prints one JSON line: per case the max error against timm's logits from the fixture (and, on the
torch backend, against timm run in this same process), trainable parameters, then the
fine-tuning losses, the .keras round-trip difference and tflite.export's error.
"""
import json
import os
import sys

import keras
import numpy as np

import keras_mobile
from keras_mobile import training


def trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def timm_logits_in_process(timm_name, path, x):
    """timm itself, in this process (torch backend only: no TensorFlow loaded)."""
    import timm
    import torch
    from safetensors.torch import load_file
    t = timm.create_model(timm_name, pretrained=False).eval()
    t.load_state_dict(load_file(path))
    with torch.no_grad():
        return t(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    out = {"backend": keras.backend.backend(), "cases": []}
    for ctor, kwargs, path, x_path, ref_path, timm_name in job["cases"]:
        x, ref = np.load(x_path), np.load(ref_path)
        m = getattr(keras_mobile, ctor)(weights=path, input_shape=x.shape[1:], include_preprocessing=False,
                                        classifier_activation=None, **kwargs)
        y = keras.ops.convert_to_numpy(m(x, training=False))
        case = {"timm": timm_name, "err": float(np.abs(y - ref).max()), "scale": float(np.abs(ref).max()),
                "params": trainable(m), "argmax_equal": bool((y.argmax(-1) == ref.argmax(-1)).all())}
        if out["backend"] == "torch":
            case["err_in_process"] = float(np.abs(y - timm_logits_in_process(timm_name, path, x)).max())
        out["cases"].append(case)
    if job.get("finetune"):
        out.update(finetune_and_round_trip(job["finetune"], job["tmp"]))
        out["tflite_error"] = tflite_error(m, job["tmp"])
    print(json.dumps(out))


def finetune_and_round_trip(path, tmp):
    """A few steps on a fixed batch from the timm checkpoint with a new 3-class head, then .keras."""
    keras.utils.set_random_seed(0)
    model = training.build_finetune_model("MobileNetV3Small", 3, weights=path, input_size=64, dropout=0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    y = np.arange(8) % 3
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    losses = model.fit(x, y, batch_size=8, epochs=8, verbose=0).history["loss"]
    file = os.path.join(tmp, "ft.keras")
    model.save(file)
    loaded = keras.saving.load_model(file)
    a = keras.ops.convert_to_numpy(model(x, training=False))
    b = keras.ops.convert_to_numpy(loaded(x, training=False))
    names = [l.name for l in loaded.layers]
    return {"losses": [float(v) for v in losses], "round_trip_err": float(np.abs(a - b).max()),
            "classifier": [l.name for l in training.classifier_layers(loaded)],
            "dotted_names": [n for n in names if "." in n]}


def tflite_error(model, tmp):
    """keras_mobile.tflite.export is TensorFlow-only: the message it gives here."""
    from keras_mobile import tflite
    try:
        tflite.export(model, os.path.join(tmp, "m.tflite"))
    except ValueError as e:
        return str(e)
    return None


if __name__ == "__main__":
    main()

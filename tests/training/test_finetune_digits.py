"""Slow tier: fine-tune from a checkpoint to >= 95 % held-out accuracy on scikit-learn's digits
with examples/finetune.py (int8 export + LiteRT included), and the script on an image folder."""
import importlib.util
import json
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_example():
    spec = importlib.util.spec_from_file_location("finetune_example", os.path.join(ROOT, "examples", "finetune.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pretrain_checkpoint(path, size, epochs):
    """A 'pretrained' checkpoint nobody downloads: MobileNetV4ConvS trained on digits 0-4 of the
    training split only, saved as a timm-layout .safetensors file (5-class head)."""
    import keras

    from keras_mobile import training
    example = load_example()
    (x, y), _, _ = example.load_digits_split()
    keep = y < 5
    model = training.build_finetune_model("MobileNetV4ConvS", 5, weights=None, input_size=size)
    ds = training.array_dataset(x[keep], y[keep], model, num_classes=5, batch_size=64,
                                augment=training.Augment(flip=False, crop_scale=(0.7, 1.0)))
    training.recipe("MobileNetV4ConvS", epochs, len(ds), 64, pretrained=False,
                    augment=training.Augment(flip=False)).compile(model)
    hist = model.fit(ds, epochs=epochs, verbose=2)
    keras.backend.clear_session()
    training.save_timm_checkpoint(model, path)
    return hist.history


@pytest.mark.slow
def test_finetune_from_a_checkpoint_reaches_95_percent_on_digits(tmp_path):
    pytest.importorskip("sklearn")
    ckpt = str(tmp_path / "digits0-4.safetensors")
    pretrain = pretrain_checkpoint(ckpt, size=64, epochs=4)
    assert pretrain["loss"][-1] < pretrain["loss"][0]
    out = tmp_path / "run"
    results = load_example().main(["--model", "MobileNetV4ConvS", "--data", "digits", "--weights", ckpt,
                                   "--size", "64", "--epochs", "10", "--batch-size", "64",
                                   "--export", "int8", "--out", str(out)])
    print(json.dumps({k: v for k, v in results.items() if k != "history"}, indent=1))
    assert results["val_accuracy"] >= 0.95                        # 360 held-out digits
    assert results["tflite"]["accuracy"] >= 0.93                  # the int8 file, in LiteRT
    assert results["tflite"]["agreement_with_keras"] >= 0.95
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["val_accuracy"] == pytest.approx(results["val_accuracy"])
    assert (out / "predictions.png").stat().st_size > 1000 and (out / "ckpt" / "best.weights.h5").exists()


@pytest.mark.slow
def test_finetune_script_on_an_image_folder(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("green", 1), ("blue", 2)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(20):
            img = rng.integers(0, 80, (48, 56, 3)).astype("uint8")
            img[..., channel] = 200
            Image.fromarray(img).save(tmp_path / "data" / name / f"{i}.jpg")
    results = load_example().main(["--model", "MobileNetV3Small", "--data", f"folder:{tmp_path / 'data'}",
                                   "--weights", "none", "--size", "32", "--epochs", "3", "--batch-size", "8",
                                   "--export", "float32", "--out", str(tmp_path / "out")])
    assert results["classes"] == 3
    assert results["history"]["loss"][-1] < results["history"]["loss"][0]
    assert results["tflite"]["agreement_with_keras"] >= 0.9
    assert (tmp_path / "out" / "labels.txt").read_text().split() == ["blue", "green", "red"]

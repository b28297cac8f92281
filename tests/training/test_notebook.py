"""examples/finetune_colab.ipynb executed top to bottom (nbclient) on tiny settings: fine-tune
from a checkpoint file on scikit-learn digits, int8 export, LiteRT check."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(ROOT, "examples", "finetune_colab.ipynb")


def test_notebook_runs_on_tiny_settings(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("sklearn")
    from keras_mobile import training

    ckpt = str(tmp_path / "pretrained.safetensors")   # a checkpoint file to fine-tune from
    training.save_timm_checkpoint(training.build_finetune_model(
        "MobileNetV3Small", 10, weights=None, input_size=32, minimalistic=True), ckpt)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    out = tmp_path / "out"
    params[0].source = "\n".join([
        'MODEL = "MobileNetV3Small"', 'MODEL_KWARGS = {"minimalistic": True}', f"WEIGHTS = {ckpt!r}",
        'DATA = "digits"', "SIZE = 32", "EPOCHS = 2", "FREEZE_EPOCHS = 0", "BATCH_SIZE = 32",
        "LIMIT = 256", "FLIP = False", 'PRECISION = "float32"', f"OUT = {str(out)!r}"])
    monkeypatch.setenv("KM_TEST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    metrics = json.loads((out / "metrics.json").read_text())
    loss = metrics["history"]["loss"]
    assert loss[-1] < loss[0]                                  # it learns
    assert metrics["tflite_bytes"] > 100_000
    assert metrics["tflite_keras_agreement"] >= 0.8            # int8 file ~ the Keras model
    assert (out / "predictions.png").stat().st_size > 1000
    assert (out / "ckpt" / "best.weights.h5").exists()

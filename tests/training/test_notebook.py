"""examples/finetune_colab.ipynb executed top to bottom (nbclient) on tiny settings: fine-tune
from a checkpoint file on scikit-learn digits; the slow variant also exports int8 and runs LiteRT."""
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(ROOT, "examples", "finetune_colab.ipynb")


def run_notebook(tmp_path, export):
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
        "LIMIT = 256", "FLIP = False", 'PRECISION = "float32"', f"EXPORT = {export!r}", f"OUT = {str(out)!r}"])
    # the install cell skips itself: keras_mobile is importable in the test environment
    os.environ["MPLBACKEND"] = "Agg"
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return out, json.loads((out / "metrics.json").read_text())


def test_notebook_fine_tunes_from_a_checkpoint(tmp_path):
    out, metrics = run_notebook(tmp_path, export=None)
    loss = metrics["history"]["loss"]
    assert loss[-1] < loss[0]                                   # it learns
    assert (out / "predictions.png").stat().st_size > 1000
    assert (out / "ckpt" / "best.weights.h5").exists()
    assert "tflite_path" not in metrics


@pytest.mark.slow
def test_notebook_with_int8_export(tmp_path):
    out, metrics = run_notebook(tmp_path, export="int8")
    assert metrics["history"]["loss"][-1] < metrics["history"]["loss"][0]
    assert metrics["tflite_bytes"] > 100_000
    assert metrics["tflite_keras_prob_mae"] < 0.05              # the int8 file computes the same model

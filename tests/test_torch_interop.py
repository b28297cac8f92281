"""keras_mobile (TensorFlow backend) and PyTorch/timm/torchvision in one Python process.

Without keras_mobile's import hook (keras_mobile/_triton_import.py), importing timm or
torchvision after TensorFlow segfaults while triton's native library loads. Each order runs in
a fresh interpreter: timm's random model is saved as safetensors, loaded with `weights=path`,
and both frameworks must give the same logits in that one process.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from tests.deps import require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    {first}
    {second}
    import torch, torchvision
    from safetensors.torch import save_file
    torch.manual_seed(0)
    t = timm.create_model("mobilenetv3_small_100", pretrained=False).eval()
    for m in t.modules():                      # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1); m.running_var.uniform_(0.5, 1.5)
    path = os.path.join(sys.argv[1], "t.safetensors")
    save_file({{k: v.contiguous() for k, v in t.state_dict().items()}}, path)
    x = np.random.default_rng(0).normal(size=(2, 96, 96, 3)).astype("float32")
    with torch.no_grad():
        ref = t(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    k = keras_mobile.MobileNetV3Small(weights=path, input_shape=(96, 96, 3),
                                      include_preprocessing=False, classifier_activation=None)
    out = np.asarray(k(x, training=False))
    import keras
    print("backend", keras.backend.backend(), "torchvision", torchvision.__version__)
    print("maxdiff", float(np.abs(out - ref).max()), "maxabs", float(np.abs(ref).max()))
""")


@pytest.mark.parametrize("order", ["keras_mobile_first", pytest.param("timm_first", marks=pytest.mark.slow)])
def test_keras_mobile_and_timm_in_one_process(tmp_path, order):
    require("torch", "timm", "torchvision", "tensorflow")
    a, b = "import keras_mobile", "import timm"
    first, second = (a, b) if order == "keras_mobile_first" else (b, a)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", SCRIPT.format(first=first, second=second), str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit code {r.returncode}\n{r.stderr[-3000:]}"
    assert "backend tensorflow" in r.stdout, r.stdout
    diff, scale = (float(v) for v in r.stdout.split("maxdiff")[1].split()[::2])
    assert diff <= 1e-4 * max(1.0, scale), r.stdout


@pytest.mark.slow
def test_without_the_hook_the_crash_is_real(tmp_path):
    """Guards the hook's reason to exist: TensorFlow then triton, hook removed, still crashes.
    If this starts passing (a fixed TF/triton pair), the hook can go."""
    require("triton", "tensorflow")
    code = ("import sys, keras_mobile, tensorflow; "
            "sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__ != 'keras_mobile._triton_import']; "
            "import triton; print('imported')")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == -11 and "imported" not in r.stdout, (r.returncode, r.stderr[-1000:])

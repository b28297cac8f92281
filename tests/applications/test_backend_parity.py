"""timm parity, `weights=` from a local timm safetensors file, fine-tuning, `.keras` round trip
and tflite.export's clear refusal on the JAX and torch backends (TensorFlow: the other tests in this folder).

Each backend runs tests/applications/backend_check.py in a fresh interpreter (KERAS_BACKEND is
fixed per process; torch and TensorFlow are kept apart). Fixtures come from tests/timm_fixture.py
(random weights, randomised BN statistics); tolerance as on TensorFlow: 1e-4 * max(1, |logits|).
On torch the logits are also compared with timm run in the same process.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.deps import require
from tests.timm_fixture import make_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backend_check.py")

DEFAULT = [("mobilenetv3_small_100", "MobileNetV3Small", {})]
FAMILIES = [("mobilenetv4_hybrid_medium", "MobileNetV4HybridM", {}), ("mobileone_s0", "MobileOneS0", {}),
            ("efficientformer_l1", "EfficientFormerL1", {})]


def _case(timm_name, ctor, kwargs):
    path, x, ref, params = make_fixture(timm_name)
    folder = os.path.dirname(path)
    np.save(os.path.join(folder, "input_nhwc.npy"), x)
    return [ctor, kwargs, path, os.path.join(folder, "input_nhwc.npy"), os.path.join(folder, "logits.npy"),
            timm_name], params


def _run(backend, cases, tmp_path, finetune):
    require(backend, "torch", "timm")
    job, params = [], []
    for c in cases:
        spec, p = _case(*c)
        job.append(spec)
        params.append(p)
    ft = _case(*DEFAULT[0])[0][2] if finetune else None
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"cases": job, "finetune": ft, "tmp": str(tmp_path)}))
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, SCRIPT, str(job_file)], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["backend"] == backend
    for case, n_params in zip(res["cases"], params):
        print(backend, case)
        tol = 1e-4 * max(1.0, case["scale"])
        assert case["err"] <= tol, case
        assert case.get("err_in_process", 0.0) <= tol, case
        assert case["params"] == n_params and case["argmax_equal"], case
    return res


# JAX in the slow tier: 260 s on the loaded 2-core machine (jit of fit); the default tier already
# compares JAX with TensorFlow logits (test_constructors.test_tf_and_jax_backends_agree).
@pytest.mark.parametrize("backend", [pytest.param("jax", marks=pytest.mark.slow), "torch"])
def test_parity_weights_finetune_and_round_trip(backend, tmp_path):
    res = _run(backend, DEFAULT, tmp_path, finetune=True)
    losses = res["losses"]
    print(backend, "losses", [round(v, 4) for v in losses], "round trip", res["round_trip_err"])
    assert losses[-1] < 0.5 * losses[0], losses            # learns the fixed batch
    assert res["round_trip_err"] <= 1e-6
    assert res["classifier"] == ["classifier"] and res["dotted_names"] == []
    assert "needs the TensorFlow backend" in res["tflite_error"] and repr(backend) in res["tflite_error"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_parity_every_family(backend, tmp_path):
    _run(backend, FAMILIES, tmp_path, finetune=False)

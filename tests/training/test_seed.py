"""training.set_seed: the same seed gives the same fine-tuned weights and loss (a fresh process,
so op determinism does not leak into other tests)."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from keras_mobile import training

def digest(model):
    return hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.weights)).hexdigest()

def finetune(seed):
    training.set_seed(seed)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (32, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, 32)
    model = training.build_finetune_model("MobileNetV3Small", 3, weights=None, input_size=32)
    init = digest(model)
    ds = training.array_dataset(x, y, 32, num_classes=3, batch_size=16, seed=seed,
                                augment=training.Augment(mixup_alpha=0.2))   # crops, flips, mixup
    training.recipe("MobileNetV3Small", 1, 2, 16, pretrained=False).compile(model)
    loss = model.fit(ds, epochs=1, verbose=0).history["loss"][-1]
    return {"init": init, "trained": digest(model), "loss": float(loss)}

seed = int(sys.argv[1])
first, second = finetune(seed), finetune(seed)
training.set_seed(seed + 1)
other = digest(training.build_finetune_model("MobileNetV3Small", 3, weights=None, input_size=32))
print("RESULT " + json.dumps({"first": first, "second": second, "other_init": other}))
"""


@pytest.mark.timeout(600)
def test_same_seed_same_weights():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-c", SCRIPT, "3"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert res["first"] == res["second"]                       # init, trained weights and loss all equal
    assert res["first"]["trained"] != res["first"]["init"]     # training changed the weights
    assert res["other_init"] != res["first"]["init"]           # another seed is another model


def test_bad_seed():
    from keras_mobile.training import set_seed
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="seed must be a non-negative int"):
            set_seed(bad)

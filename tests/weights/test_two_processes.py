"""Two fresh interpreters load the same checkpoint into an empty cache at the same moment: both
get the right weights, the file is downloaded and converted once (the cache's file lock), and
the cache entry is valid."""
import json
import os
import subprocess
import sys

import numpy as np

from keras_mobile.weights import cache

from tests.weights.checkpoints import INFO, SHAPE, cache_entries

CHILD = """
import json, os, sys, time
import numpy as np
import keras_mobile
from keras_mobile.weights import convert

barrier, out = sys.argv[1], sys.argv[2]
real, calls = convert.to_keras_layout, []

def slow_convert(*args, **kwargs):
    calls.append(1)
    time.sleep(1.0)  # widens the window in which an unlocked second process would convert too
    return real(*args, **kwargs)

convert.to_keras_layout = slow_convert
open(os.path.join(barrier, str(os.getpid())), "w").close()  # both interpreters start loading together
deadline = time.time() + 120
while len(os.listdir(barrier)) < 2 and time.time() < deadline:
    time.sleep(0.01)
model = keras_mobile.MobileNetV3Small(weights="imagenet", input_shape=%r, classifier_activation=None)
np.savez(out, **{v.path.replace("/", "|"): np.asarray(v) for v in model.weights})
print(json.dumps({"conversions": len(calls)}))
""" % (SHAPE,)


def test_two_processes_share_one_conversion(hub, checkpoint, tmp_path):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "KERAS_BACKEND": "numpy"}  # no TensorFlow import: faster start
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(barrier), str(tmp_path / f"w{i}.npz")],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(2)]
    results = [c.communicate(timeout=240) for c in children]
    for child, (out, err) in zip(children, results):
        assert child.returncode == 0, err[-3000:]
    conversions = [json.loads(out.strip().splitlines()[-1])["conversions"] for out, _ in results]
    assert sorted(conversions) == [0, 1]
    assert [r for r in hub.requests if r[0] == "GET"] == [("GET", hub.path(INFO.hf_hub_id))]
    expected = {v.path.replace("/", "|"): np.asarray(v) for v in source.weights}
    for i in range(2):
        loaded = np.load(tmp_path / f"w{i}.npz")
        assert sorted(loaded.files) == sorted(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(loaded[name], value, err_msg=name)
    assert cache_entries() == [f"{INFO.cache_name}.json", f"{INFO.cache_name}.safetensors"]
    assert cache.read(INFO.cache_name) is not None

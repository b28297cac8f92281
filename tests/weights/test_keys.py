"""One wrong key at a time: a missing, an unexpected or a mis-shaped tensor is refused with a
WeightsError that names that key (keras_mobile/weights/assign.py)."""
import re

import numpy as np
import pytest
from safetensors.numpy import load, save_file

from keras_mobile.weights import WeightsError

from tests.weights.checkpoints import build, same_outputs

MISSING = ["conv_stem.weight", "bn1.running_var", "blocks.1.0.conv_dw.weight", "classifier.bias"]


@pytest.fixture(scope="module")
def tensors(checkpoint):
    return load(checkpoint[0])


def write(tmp_path, tensors):
    path = str(tmp_path / "edited.safetensors")
    save_file(tensors, path)
    return path


@pytest.mark.parametrize("key", MISSING)
def test_a_missing_key_is_named(tmp_path, tensors, key):
    path = write(tmp_path, {k: v for k, v in tensors.items() if k != key})
    with pytest.raises(WeightsError, match=rf"edited\.safetensors does not match .*1 weights missing from the file "
                                           rf"\(e\.g\. \['{key}'\]\)"):
        build(path)


def test_an_unexpected_key_is_named_unless_the_top_is_dropped(tmp_path, tensors, checkpoint):
    path = write(tmp_path, {**tensors, "blocks.9.0.conv.weight": np.zeros((4, 4, 1, 1), np.float32)})
    with pytest.raises(WeightsError, match=r"1 tensors in the file that .* does not have \(e\.g\. \['blocks\.9\.0\.conv\.weight'\]\)"):
        build(path)
    trunk = build(path, include_top=False)  # include_top=False ignores keys the model lacks
    np.testing.assert_array_equal(trunk.get_layer("conv_stem").get_weights()[0],
                                  checkpoint[1].get_layer("conv_stem").get_weights()[0])


@pytest.mark.parametrize("key,shape,keras_shape", [
    ("conv_stem.weight", (16, 3, 5, 5), (5, 5, 3, 16)),  # OIHW in the file, converted HWIO in the message
    ("bn1.running_mean", (15,), (15,)),
    ("classifier.weight", (1000, 512), (512, 1000)),
])
def test_a_mis_shaped_key_is_named_with_both_shapes(tmp_path, tensors, key, shape, keras_shape):
    path = write(tmp_path, {**tensors, key: np.zeros(shape, np.float32)})
    with pytest.raises(WeightsError, match=re.escape(f"1 shape mismatches (e.g. {key}: file {keras_shape}, model (")):
        build(path)


def test_the_unedited_file_loads(tmp_path, tensors, checkpoint):
    """The control: the same round trip without an edit loads exactly."""
    assert same_outputs(build(write(tmp_path, dict(tensors))), checkpoint[1]) == 0.0

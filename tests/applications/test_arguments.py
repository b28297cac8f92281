"""Constructor arguments checked at construction: pathlib paths, preprocessing vs channels."""
import pathlib

import numpy as np
import pytest

import keras_mobile
from keras_mobile.training import save_timm_checkpoint


def test_weights_as_pathlib_path(tmp_path):
    src = keras_mobile.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=7)
    path = pathlib.Path(save_timm_checkpoint(src, str(tmp_path / "w.safetensors")))
    loaded = keras_mobile.MobileNetV3Small(weights=path, input_shape=(32, 32, 3), classes=7)
    for a, b in zip(src.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="weights file not found"):
        keras_mobile.MobileNetV3Small(weights=tmp_path / "absent" / "w.safetensors", classes=7)
    from keras_mobile.training import build_finetune_model
    tuned = build_finetune_model("MobileNetV3Small", 4, weights=path, input_size=32)   # new 4-class head
    assert tuned.output_shape == (None, 4)
    np.testing.assert_array_equal(tuned.get_layer("conv_stem").kernel.numpy(), src.get_layer("conv_stem").kernel.numpy())


@pytest.mark.parametrize("channels", [1, 4])
def test_preprocessing_needs_three_channels(channels):
    with pytest.raises(ValueError, match=rf"include_preprocessing=True .* has {channels} channels.*"
                                         r"include_preprocessing=False"):
        keras_mobile.MobileNetV3Small(weights=None, input_shape=(32, 32, channels), classes=3)
    m = keras_mobile.MobileNetV3Small(weights=None, input_shape=(32, 32, channels), classes=3,
                                      include_preprocessing=False)
    assert tuple(m(np.zeros((1, 32, 32, channels), "float32"), training=False).shape) == (1, 3)

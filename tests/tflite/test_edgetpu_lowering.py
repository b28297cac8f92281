"""The export lowerings of tflite/edgetpu_lowering.py compute the Keras layers they replace."""
import keras
import numpy as np
import pytest

from keras_mobile.layers.meta_blocks import meta_block_4d
from keras_mobile.tflite.edgetpu_lowering import AveragePoolAsDepthwise, xnnpack_int8_friendly


@pytest.mark.parametrize("size, pool, strides, padding", [
    ((7, 7), 3, 1, "same"), ((8, 5), 3, 1, "same"), ((9, 9), 3, 2, "same"), ((6, 6), 2, 2, "same"),
    ((10, 7), 5, 1, "same"), ((8, 8), 3, 2, "valid")])
def test_average_pool_as_depthwise_is_exact(size, pool, strides, padding):
    """Border windows average over the cells inside the image only (timm's count_include_pad=False)."""
    x = np.random.default_rng(0).standard_normal((2,) + size + (4,)).astype("float32")
    layer = keras.layers.AveragePooling2D(pool, strides, padding=padding)
    inp = keras.Input(x.shape[1:])
    keras.Model(inp, layer(inp))
    want = keras.ops.convert_to_numpy(layer(x))
    got = keras.ops.convert_to_numpy(AveragePoolAsDepthwise(layer)(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_efficientformer_pool_mixer_lowered_exactly():
    """Two Meta4D blocks (EfficientFormer's pool token mixer) on a 14x14 map, as the default int8
    export rewrites them: the same outputs."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((14, 14, 8))
    h = meta_block_4d(meta_block_4d(inp, layer_scale=0.5, name="a"), layer_scale=0.5, name="b")
    model = keras.Model(inp, h)
    lowered, changes = xnnpack_int8_friendly(model)
    assert not [l for l in lowered.layers if isinstance(l, keras.layers.AveragePooling2D)]
    assert any("AveragePooling2D x2" in c for c in changes), changes
    x = np.random.default_rng(0).standard_normal((2, 14, 14, 8)).astype("float32")
    want, got = model.predict(x, verbose=0), lowered.predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_pool_reused_at_two_sizes_is_lowered_for_each():
    """One AveragePooling2D layer called on an 8x8 and a 4x4 map: each call gets its own kernel and
    border map (built from the first call alone, the second call failed to trace)."""
    inp = keras.Input((8, 8, 4))
    pool = keras.layers.AveragePooling2D(3, 1, "same")
    small = keras.layers.MaxPooling2D(2)(inp)
    model = keras.Model(inp, [pool(inp), pool(small)])
    lowered, changes = xnnpack_int8_friendly(model)
    assert any("AveragePooling2D x1" in c for c in changes), changes
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 4)).astype("float32")
    for got, want in zip(lowered.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_int8_pool_mixer_is_a_delegated_depthwise_conv(tmp_path):
    """The default int8 export of Meta4D blocks has no AVERAGE_POOL_2D (int8 depthwise conv and MUL
    instead, both delegated) and stays as close to Keras as int8 allows (measured mean error 0.6 %
    of the output span, the same as with the pool as a float island)."""
    from keras_mobile.tflite import export, run_tflite
    keras.utils.set_random_seed(0)
    inp = keras.Input((14, 14, 8))
    model = keras.Model(inp, meta_block_4d(meta_block_4d(inp, layer_scale=0.5, name="a"), layer_scale=0.5, name="b"))
    x = np.random.default_rng(0).standard_normal((24, 14, 14, 8)).astype("float32")
    report = export(model, tmp_path / "pool.tflite", "int8", representative_data=x[:16], num_calibration_steps=16,
                    input_dtype="float32", progress=False)
    assert "AVERAGE_POOL_2D" not in report.ops and report.ops["DEPTHWISE_CONV_2D"] == 2
    assert report.delegate_partitions == 1 and not report.undelegated_ops, report.undelegated_ops
    assert "AveragePooling2D x2" in report.extra["lowering"]
    want, got = model.predict(x[16:], verbose=0), run_tflite(report.path, x[16:])
    span = np.abs(want).max()
    assert np.abs(got - want).mean() <= 0.02 * span and np.abs(got - want).max() <= 0.2 * span


@pytest.mark.parametrize("make", [
    lambda: keras.layers.Rescaling([1 / 58.4, 1 / 57.1, 1 / 57.4], offset=[-2.12, -2.04, -1.80]),
    lambda: keras.layers.Rescaling([1 / 127.5] * 3, offset=[-1.0] * 3),       # equal entries: still a vector MUL
    lambda: keras.layers.Rescaling(np.array([1 / 58.4, 1 / 57.1, 1 / 57.4]).reshape(1, 1, 1, 3),  # shaped to broadcast
                                   offset=np.array([-2.12, -2.04, -1.80]).reshape(1, 1, 3)),
    lambda: keras.layers.Normalization(mean=[120.0, 110.0, 100.0], variance=[3400.0, 3300.0, 3200.0])])
def test_input_scaling_as_depthwise_is_exact(make):
    """A per-channel Rescaling / Normalization of raw pixels, as the default int8 export rewrites it
    (a 1x1 depthwise conv with bias): the same outputs."""
    inp = keras.Input((6, 5, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 1)(make()(inp)))
    lowered, changes = xnnpack_int8_friendly(model)
    assert not [l for l in lowered.layers if isinstance(l, (keras.layers.Rescaling, keras.layers.Normalization))]
    assert any("input scaling x1" in c for c in changes), changes
    x = np.random.default_rng(0).uniform(0, 255, (2, 6, 5, 3)).astype("float32")
    np.testing.assert_allclose(lowered.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_per_pixel_scaling_is_left_alone():
    """A Rescaling whose scale varies over pixels is no per-channel affine: exported as it was."""
    inp = keras.Input((6, 5, 3))
    scale = np.random.default_rng(0).uniform(0.5, 1.5, (1, 6, 5, 1)).astype("float32")
    model = keras.Model(inp, keras.layers.Conv2D(4, 1)(keras.layers.Rescaling(scale)(inp)))
    lowered, changes = xnnpack_int8_friendly(model)
    assert lowered is model and changes == []


def test_uniform_scaling_is_left_alone():
    """Rescaling(1/255) is a MUL by a scalar, which XNNPACK runs at full speed: no rewrite."""
    inp = keras.Input((6, 5, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 1)(keras.layers.Rescaling(1 / 255.0)(inp)))
    lowered, changes = xnnpack_int8_friendly(model)
    assert lowered is model and changes == []


def test_int8_input_scaling_rounds_once(tmp_path):
    """In the default int8 file the per-channel input scaling is one DEPTHWISE_CONV_2D reading the uint8
    pixels (each channel's one weight and its offset are exact in int8 and int32), so every output is
    within half an int8 step of Keras; as MUL then ADD (two roundings, the converter's form) it was not."""
    from keras_mobile.tflite import export, run_tflite
    from keras_mobile.tflite.inspect import make_interpreter, op_details
    inp = keras.Input((8, 8, 3))
    scaling = keras.layers.Rescaling([1 / (255 * s) for s in (0.229, 0.224, 0.225)],
                                     offset=[-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    model = keras.Model(inp, scaling(inp))
    x = np.round(np.random.default_rng(0).uniform(0, 255, (24, 8, 8, 3))).astype("float32")
    report = export(model, tmp_path / "scaling.tflite", "int8", representative_data=x[:16],
                    num_calibration_steps=16, output_dtype="int8", progress=False)
    ops = [o["op_name"] for o in op_details(make_interpreter(report.path, delegates=False))]
    assert ops == ["QUANTIZE", "DEPTHWISE_CONV_2D"], ops
    step = report.outputs[0].scale
    err = np.abs(run_tflite(report.path, x[16:]) - model.predict(x[16:], verbose=0))
    assert err.max() <= 0.51 * step, (err.max(), step)     # half a step, plus the int32 bias rounding


def test_an_unknown_rewrite_is_named():
    from keras_mobile.tflite.edgetpu_lowering import lowered
    inp = keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match=r"unknown rewrites \['swish'\]"):
        lowered(keras.Model(inp, keras.layers.Activation("hard_swish")(inp)), ("hard_swish", "swish"))

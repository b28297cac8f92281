"""Int8 PTQ with an input channel that never fires: the huge weight reading it (as MobileOne's fused
identity branch has on a dead channel) must not set its output channel's int8 weight scale."""
import keras
import pytest
import numpy as np

from keras_mobile.tflite import export, run_tflite
from keras_mobile.tflite.dead_inputs import constant_input_channels, constant_inputs_folded, dead_input_channels


def _model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    first = keras.layers.Conv2D(4, 1, name="first")
    h = keras.layers.ReLU()(first(inp))
    second = keras.layers.Conv2D(4, 1, name="second")
    model = keras.Model(inp, second(h))
    k, b = first.get_weights()
    k, b = np.abs(k), np.zeros_like(b)           # channels 1-3 fire on inputs in [0, 1] ...
    b[0] = -1000.0                               # ... channel 0 never does
    first.set_weights([k, b])
    k, b = second.get_weights()
    k[0, 0, 0, 2] = 300.0                        # ... and output channel 2 reads it with weight 300
    second.set_weights([k, b])
    return model


def test_the_dead_channel_is_found_on_the_calibration_data():
    model = _model()
    x = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 3)).astype("float32")
    assert [(layer.name, channels) for layer, channels in dead_input_channels(model, [x])] == [("second", [0])]


def test_int8_file_keeps_the_channel_that_reads_a_dead_input(tmp_path):
    model = _model()
    rng = np.random.default_rng(1)
    calib, x = (rng.uniform(0, 1, (n, 8, 8, 3)).astype("float32") for n in (32, 16))
    before = [w.copy() for w in model.get_weights()]
    report = export(model, tmp_path / "m.tflite", "int8", representative_data=calib, input_dtype="float32",
                    progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))    # restored
    assert "zero on every calibration sample" in report.extra["lowering"] and "second: 1 of 4" in report.extra["lowering"]
    want, got = model.predict(x, verbose=0)[..., 2], run_tflite(tmp_path / "m.tflite", x)[..., 2]
    # without the fix the channel's other weights round to 0 steps of 300/127: error ~ its whole range
    assert np.abs(got - want).max() <= 0.05 * (want.max() - want.min()), np.abs(got - want).max()


def _constant_channel_model(kernel=1):
    """first -> ReLU -> second: first's channel 1 is 2.0 on every input (zero weights, bias 2), and
    second reads it with weight 300 against a bias of -600 (a fused identity BN on a channel whose
    running variance is ~0): the int8 step of that input times 300 would swamp the output."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    first = keras.layers.Conv2D(4, 1, name="first")
    second = keras.layers.Conv2D(4, kernel, padding="same", name="second")
    model = keras.Model(inp, second(keras.layers.ReLU()(first(inp))))
    k, b = first.get_weights()
    k, b = np.abs(k), np.zeros_like(b)
    k[..., 1], b[1] = 0.0, 2.0
    first.set_weights([k, b])
    k, b = second.get_weights()
    k[..., 1, 2], b[2] = 0.0, -600.0
    k[kernel // 2, kernel // 2, 1, 2] = 300.0
    second.set_weights([k, b])
    return model


def test_constant_channels_fold_into_the_bias_of_a_1x1_consumer_only():
    x = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 3)).astype("float32")
    [(layer, conv, channels, values)] = constant_input_channels(_constant_channel_model(), [x])
    assert (layer.name, channels) == ("second", [1]) and np.allclose(values, 2.0)
    assert constant_input_channels(_constant_channel_model(kernel=3), [x]) == []    # the border sees padding
    varying = _constant_channel_model()
    k, b = varying.get_layer("first").get_weights()
    k[..., 1] = 0.05                     # the channel now spreads by ~0.15: several int8 steps
    varying.get_layer("first").set_weights([k, b])
    assert constant_input_channels(varying, [x]) == []


def test_int8_file_keeps_the_channel_that_reads_a_constant_input(tmp_path):
    model = _constant_channel_model()
    rng = np.random.default_rng(1)
    calib, x = (rng.uniform(0, 1, (n, 8, 8, 3)).astype("float32") for n in (32, 16))
    before = [w.copy() for w in model.get_weights()]
    want = model.predict(x, verbose=0)[..., 2]
    with constant_inputs_folded(model, [calib]) as folded:
        np.testing.assert_allclose(model.predict(x, verbose=0)[..., 2], want, rtol=1e-5, atol=1e-4)   # exact
    assert folded == ["second: 1 of 4"]
    report = export(model, tmp_path / "m.tflite", "int8", representative_data=calib, input_dtype="float32",
                    progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))    # restored
    assert "constant on every calibration sample" in report.extra["lowering"]
    got = run_tflite(tmp_path / "m.tflite", x)[..., 2]
    # unfolded, the 2.0 input's int8 rounding times 300 is an error of about the channel's whole range
    assert np.abs(got - want).max() <= 0.05 * (want.max() - want.min()), np.abs(got - want).max()


def test_too_few_different_samples_or_every_channel_constant_fold_nothing():
    """After a global pool each sample gives one value per channel: with one sample, or one sample
    repeated, every channel would look constant and the file would ignore its input."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(5, name="fc")(h))
    x = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 3)).astype("float32")
    assert constant_input_channels(model, [x[:1]]) == []
    assert constant_input_channels(model, [np.repeat(x[:1], 50, axis=0)]) == []
    assert constant_input_channels(model, [x[:7], x[:7]]) == []          # 7 different: below the minimum
    x8 = np.concatenate([x[:8], x[:8]])
    [(layer, _, channels, _)] = constant_input_channels(_constant_channel_model(), [x8])
    assert (layer.name, channels) == ("second", [1])


def _depthwise_model(mobileone=False):
    """first -> ReLU -> 3x3 depthwise: first's channel 0 never fires, and the depthwise conv reads it
    with weights of 1e5 (MobileOne's fused kernel on a dead stem channel: up to ~1,550) and a bias of
    2.0, so that output channel is 2.0 everywhere; its int8 bias step (input scale x 1e5 / 127) is
    about 4. `mobileone`: the depthwise conv is a reparameterized MobileOneBlock (its ReLU too)."""
    from keras_mobile.layers.mobileone_block import MobileOneBlock
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    first = keras.layers.Conv2D(4, 1, name="first")
    h = keras.layers.ReLU()(first(inp))
    if mobileone:
        block = MobileOneBlock(4, 3, depthwise=True, inference_mode=True, name="mid")
        out, dw = block(h), block.reparam_conv
    else:
        dw = keras.layers.DepthwiseConv2D(3, padding="same", name="mid")
        out = dw(h)
    model = keras.Model(inp, out)
    k, b = first.get_weights()
    k, b = np.abs(k), np.zeros_like(b)
    b[0] = -1000.0
    first.set_weights([k, b])
    k, b = dw.get_weights()
    k = 10 * k                                   # the other channels span ~30: an output step of ~0.1
    k[:, :, 0, 0], b[0] = 1e5, 2.0
    dw.set_weights([k, b])
    return model


@pytest.mark.parametrize("mobileone", [False, True], ids=["DepthwiseConv2D", "MobileOneBlock"])
def test_int8_file_keeps_the_bias_of_a_depthwise_channel_that_reads_a_dead_input(tmp_path, mobileone):
    model = _depthwise_model(mobileone)
    rng = np.random.default_rng(1)
    calib, x = (rng.uniform(0, 1, (n, 8, 8, 3)).astype("float32") for n in (32, 16))
    report = export(model, tmp_path / "m.tflite", "int8", representative_data=calib, input_dtype="float32",
                    progress=False)
    want, got = model.predict(x, verbose=0), run_tflite(tmp_path / "m.tflite", x)
    step = (want.max() - min(want.min(), 0)) / 255
    np.testing.assert_allclose(want[..., 0], 2.0, rtol=1e-6)
    # unzeroed, the bias 2.0 rounds to a multiple of ~4 (0 or 4: ~20 output steps off)
    assert np.abs(got[..., 0] - 2.0).max() <= step, (np.abs(got[..., 0] - 2.0).max(), step)
    assert "mid: 1 of 4" in report.extra["lowering"], report.extra["lowering"]
    assert "XNNPACK could not" not in report.extra["lowering"]

"""Cross-layer equalization in the int8 PTQ export (`tflite.equalization`): exact in float, only on
tensors where a per-channel scale commutes, restored after export, and it lowers the int8 error
of a pair where one huge consumer weight sets the weight scale."""
import sys

import keras
import numpy as np
import pytest

import keras_mobile
from keras_mobile import graph
from keras_mobile.reparameterize import reparameterize
from keras_mobile.tflite import export, run_tflite
from keras_mobile.tflite.equalization import equalization_pairs, equalize, equalized

L = keras.layers


def _uneven(model, seed=0):
    """Every kernel's output channels (and BN statistics) scaled by factors over 3 decades, so the
    ranges CLE equalizes differ."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g * rng.uniform(0.5, 2, g.shape), b + rng.normal(0, 0.5, b.shape),
                               rng.normal(0, 0.5, m.shape), v * rng.uniform(0.01, 10, v.shape)])
        elif layer.weights and isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.Dense)):
            w = layer.get_weights()
            axis = -2 if isinstance(layer, L.DepthwiseConv2D) else -1
            shape = [1] * w[0].ndim
            shape[axis] = -1
            w[0] = w[0] * 10 ** rng.uniform(-1.5, 1.5, w[0].shape[axis]).reshape(shape)
            w[1:] = [rng.normal(0, 0.1, b.shape) for b in w[1:]]
            layer.set_weights(w)


def _chain():
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, activation="relu", name="c1")(inp)
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(8, 3, use_bias=False, name="c2")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU()(x)
    x = L.MaxPooling2D()(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(6, activation="relu", name="d1")(x)
    model = keras.Model(inp, L.Dense(4, name="d2")(x))
    _uneven(model)
    return model


def _same_function(model, x):
    before = [w.copy() for w in model.get_weights()]
    want = model.predict(x, verbose=0)
    with equalized(model) as changes:
        got = model.predict(x, verbose=0)
        changed = sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))       # restored
    return want, got, changes, changed


def test_chain_is_equalized_and_computes_the_same():
    model = _chain()
    pairs = [(p.layer.name, c.layer.name) for p, c, _ in equalization_pairs(model)]
    assert pairs == [("c1", "c2"), ("c2", "dw"), ("dw", "d1"), ("d1", "d2")]
    x = np.random.default_rng(1).uniform(0, 1, (8, 12, 12, 3)).astype("float32")
    want, got, changes, changed = _same_function(model, x)
    assert len(changes) == 4 and changed == 10     # kernels, biases, bn2's gamma and beta
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # the ranges are equal after equalization: r1 = r2 on every pair, to DFQ's tolerance
    pairs = equalization_pairs(model)
    equalize(pairs)
    for p, c, _ in pairs:
        np.testing.assert_allclose(p.out_range(), c.in_range(), rtol=1e-3)


def test_reparameterized_mobileone_computes_the_same():
    keras.utils.set_random_seed(0)
    model = keras_mobile.MobileOneS0(weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    rng = np.random.default_rng(0)
    for layer in model.layers:                   # BN statistics as training leaves them: uneven ranges
        for norm in [n for n in graph.sublayers(layer, include_self=False) if isinstance(n, L.BatchNormalization)]:
            g, b, m, v = norm.get_weights()
            norm.set_weights([g * rng.uniform(0.5, 2, g.shape), rng.normal(0, 0.3, b.shape),
                              rng.normal(0, 0.3, m.shape), v * rng.uniform(0.05, 5, v.shape)])
    fused = reparameterize(model)
    assert len(equalization_pairs(fused)) == 43             # every block pair of the plain chain, the classifier
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    want, got, changes, _ = _same_function(fused, x)
    assert len(changes) == 43
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("barrier", ["relu6", "hard_silu", "residual", "two_readers", "output"])
def test_tensors_where_a_scale_does_not_commute_are_left_alone(barrier):
    inp = keras.Input((8, 8, 4))
    first = L.Conv2D(4, 1, name="first")
    h = first(inp)
    outputs = []
    if barrier == "relu6":
        h = L.ReLU(max_value=6.0)(h)
    elif barrier == "hard_silu":
        h = L.Activation("hard_silu")(h)
    elif barrier == "residual":
        h = L.Add()([h, inp])
    elif barrier == "two_readers":
        outputs.append(L.Conv2D(2, 1)(h))
    elif barrier == "output":
        outputs.append(h)
    model = keras.Model(inp, [L.Conv2D(4, 1, name="second")(h)] + outputs)
    assert [(p.layer.name, c.layer.name) for p, c, _ in equalization_pairs(model)] == []


def _huge_weight_pair():
    """first (relu) -> second, where second's output channel 0 reads first's channel 2 (small
    values) with weight 300: that weight sets the channel's int8 weight scale (300/127), so its
    other weights round to a few steps."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    first = L.Conv2D(4, 1, activation="relu", name="first")
    second = L.Conv2D(4, 1, name="second")
    model = keras.Model(inp, second(first(inp)))
    k, b = first.get_weights()
    k = np.abs(k)
    k[..., 2] *= 0.004                                  # channel 2's values ~1/250 of the others ...
    first.set_weights([k, np.zeros_like(b)])
    k, b = second.get_weights()
    k[0, 0, 2, 0] = 300.0                               # ... read with weight 300 by output channel 0
    second.set_weights([k, b])
    return model


@pytest.mark.parametrize("setting", ["weights", "activations"])
def test_cle_reduces_the_int8_error_of_a_huge_consumer_weight(tmp_path, setting):
    model = _huge_weight_pair()
    rng = np.random.default_rng(1)
    calib, x = (rng.uniform(0, 1, (n, 8, 8, 3)).astype("float32") for n in (32, 16))
    want = model.predict(x, verbose=0)[..., 0]
    before = [w.copy() for w in model.get_weights()]
    errors = {}
    for cle in (False, setting):
        path = tmp_path / f"cle_{cle}.tflite"
        report = export(model, path, "int8", representative_data=calib, input_dtype="float32", progress=False,
                        cross_layer_equalization=cle)
        assert ("cross-layer equalization" in report.extra["lowering"]) == bool(cle)
        errors[cle] = np.sqrt(np.mean((run_tflite(path, x)[..., 0] - want) ** 2)) / want.std()
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))       # restored
    assert "first -> second" in report.extra["lowering"]
    assert errors[setting] < 0.5 * errors[False], errors


def test_a_bad_setting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cross_layer_equalization must be one of"):
        export(_huge_weight_pair(), tmp_path / "m.tflite", "int8", representative_data=np.zeros((4, 8, 8, 3)),
               cross_layer_equalization="dfq")
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize("quantization", ["float32", "dynamic"])
def test_equalization_outside_int8_ptq_is_refused(tmp_path, quantization):
    """A float file calibrates nothing, so the option would be silently ignored: it is an error."""
    with pytest.raises(ValueError, match=f"cross_layer_equalization='weights' is a step of int8 calibration; "
                                         f"quantization='{quantization}'"):
        export(_huge_weight_pair(), tmp_path / "m.tflite", quantization, cross_layer_equalization="weights")
    assert not (tmp_path / "m.tflite").exists()


def test_weights_are_restored_when_conversion_fails(tmp_path, monkeypatch):
    model = _huge_weight_pair()
    before = [w.copy() for w in model.get_weights()]
    seen = []

    def fail(conv):
        seen.append([w.copy() for w in model.get_weights()])
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(sys.modules["keras_mobile.tflite.export"], "convert_quietly", fail)
    calib = np.random.default_rng(1).uniform(0, 1, (8, 8, 8, 3)).astype("float32")
    with pytest.raises(RuntimeError, match="conversion failed"):
        export(model, tmp_path / "m.tflite", "int8", representative_data=calib, input_dtype="float32",
               progress=False, cross_layer_equalization="activations")
    assert any(not np.array_equal(a, b) for a, b in zip(before, seen[0]))     # equalized while converting
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def _beyond_xnnpack(pair):
    """A depthwise conv whose channel 1 has weight 300 on an input ~0 (within one int8 step of the
    tensor) while its output tensor's range is small: its input x weight / output scale ratio is far
    beyond what XNNPACK's int8 kernels accept. pair=True: a 1x1 conv + ReLU makes that input (a CLE
    pair); False: the model input does (nothing to equalize)."""
    inp = keras.Input((8, 8, 3))
    h = inp
    if pair:
        conv = keras.layers.Conv2D(2, 1, activation="relu")
        h = conv(h)
        conv.set_weights([np.array([[1.0, 0.0], [0.0, 1e-5], [0.0, 0.0]], "float32").reshape(1, 1, 3, 2),
                          np.zeros(2, "float32")])
    dw = keras.layers.DepthwiseConv2D(3, padding="same")
    out = dw(h)
    w = np.zeros((3, 3, h.shape[-1], 1), "float32")
    w[1, 1, 0], w[1, 1, -1] = 0.001, 300.0
    dw.set_weights([w, np.zeros(h.shape[-1], "float32")])
    x = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    if not pair:
        x[..., 2] *= 1e-5
    return keras.Model(inp, out), x


def test_a_file_xnnpack_cannot_prepare_is_converted_again_with_equalization(tmp_path):
    """The default int8 export of such a model used to raise LiteRT's "failed to prepare"; it now
    converts again with cross-layer equalization and the file runs in XNNPACK, close to Keras."""
    model, x = _beyond_xnnpack(pair=True)
    report = export(model, tmp_path / "m.tflite", "int8", representative_data=x, num_calibration_steps=16,
                    progress=False)
    assert "XNNPACK could not prepare the int8 file" in report.extra["lowering"]
    assert "cross-layer equalization by calibration peaks" in report.extra["lowering"]
    got, want = run_tflite(report.path, x), model.predict(x, verbose=0)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()


def test_a_file_xnnpack_cannot_prepare_even_equalized_is_a_clear_error(tmp_path):
    model, x = _beyond_xnnpack(pair=False)
    with pytest.raises(ValueError, match=r"XNNPACK delegate cannot prepare the int8 file .*with "
                                         r"cross_layer_equalization='activations'.*quantization='dynamic'"):
        export(model, tmp_path / "m.tflite", "int8", representative_data=x, num_calibration_steps=16, progress=False)
    assert not (tmp_path / "m.tflite").exists()
    with pytest.raises(ValueError, match=r"XNNPACK delegate cannot prepare the int8 file"):     # checked as written
        export(model, tmp_path / "m.tflite", target="edgetpu", representative_data=x, num_calibration_steps=16,
               progress=False)
    assert not (tmp_path / "m.tflite").exists()

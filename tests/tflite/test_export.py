"""TFLite export checked with the LiteRT interpreter (no interpreter mocks)."""
import numpy as np
import pytest

import keras_mobile
from keras_mobile.tflite import export, inspect, run_tflite
from keras_mobile.tflite.export import converter_for
from keras_mobile.commands.demo import load_digits_rgb
from keras_mobile.tflite.representative import set_bn_statistics

SIZE = 96


@pytest.fixture(scope="module")
def small_model():
    return keras_mobile.MobileNetV3Small(weights=None, input_shape=(SIZE, SIZE, 3), classes=10,
                                         classifier_activation=None)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")


def test_float32_matches_keras(tmp_path, small_model, images):
    path = tmp_path / "m.tflite"
    report = export(small_model, path)
    err = np.abs(run_tflite(path, images) - small_model.predict(images, verbose=0)).max()
    assert err <= 1e-4
    assert report.ops["HARD_SWISH"] == 19            # hard-swish lowers to the builtin op
    assert report.delegate_partitions == 1 and report.dynamic_shape_ops == 0
    assert report.inputs[0].shape == (1, SIZE, SIZE, 3)


@pytest.mark.parametrize("quantization", ["float16", "dynamic"])
def test_weight_quantized_exports_run(tmp_path, small_model, images, quantization):
    path = tmp_path / f"m_{quantization}.tflite"
    report = export(small_model, path, quantization)
    ref = small_model.predict(images, verbose=0)
    out = run_tflite(path, images)
    assert report.file_bytes < 0.6 * inspect(_float(tmp_path, small_model)).file_bytes
    assert np.abs(out - ref).max() < 0.05 * max(1.0, np.abs(ref).max())


def _float(tmp_path, model):
    path = tmp_path / "ref.tflite"
    if not path.exists():
        export(model, path)
    return path


def test_int8_is_fully_integer_with_uint8_input(tmp_path, small_model, images):
    path = tmp_path / "m8.tflite"
    # random BN statistics give residual ADDs scale ratios XNNPACK refuses in int8, which the default
    # export would run as float islands; the converter's graph itself is all int8
    report = export(small_model, path, "int8", representative_data=images, float_islands=False)
    assert report.fully_integer, report.float_ops
    assert set(report.ops) - {"QUANTIZE", "DEQUANTIZE"} and report.ops["QUANTIZE"] == 1
    assert report.inputs[0].dtype == "uint8" and abs(report.inputs[0].scale - 1.0) < 1e-3
    assert "HARD_SWISH" not in report.ops and report.ops["MUL"] >= 2 * 19   # lowered: int8 HARD_SWISH is not delegated
    assert "every op runs in integer" in str(report)


def test_default_int8_is_one_xnnpack_partition(tmp_path):
    """The default PTQ file: hard-swish as MUL/ADD+RELU6/MUL (as x * gate) and the softmax on the
    dequantized logits, so XNNPACK takes the whole graph (only the uint8->int8 input QUANTIZE stays
    out); the input scaling is a depthwise conv."""
    model = keras_mobile.MobileNetV3Small(weights=None, input_shape=(64, 64, 3), classes=10)
    x = np.random.default_rng(1).uniform(0, 255, (40, 64, 64, 3)).astype("float32")
    set_bn_statistics(model, x[:32])   # unit-scale activations as in a trained net (XNNPACK checks ADD scales)
    report = export(model, tmp_path / "v3.tflite", "int8", representative_data=x[:32], num_calibration_steps=32)
    assert "HARD_SWISH" not in report.ops and report.fully_integer, report.float_ops
    assert report.delegate_partitions == 1 and report.undelegated_ops == [(0, "QUANTIZE")], report.undelegated_ops
    assert report.ops["SOFTMAX"] == 1 and "float SOFTMAX" in report.extra["lowering"]
    assert "input scaling x1 -> 1x1 depthwise conv" in report.extra["lowering"]      # the fast forms (int8_fast_path.md)
    assert "hard-swish x19: int8 MULs rewired to x*(relu6(x+3)/6)" in report.extra["lowering"]
    probs = run_tflite(report.path, x[32:])
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)            # an exact float softmax


@pytest.mark.slow
def test_default_int8_agrees_with_keras_on_a_trained_model(tmp_path):
    """MobileNetV3Small trained 4 epochs on digits (32 px, 94 % test accuracy): int8 top-1 vs Keras.
    Measured 97.2 % for the default graph with the first lowering form ((x/6)*relu6(x+3)), 98.1 % for
    the converter's HARD_SWISH graph: the issue's 99 % goal is not reached; the bar guards against a
    collapse. (Not re-run with the current gate-first form.)"""
    import keras
    (x, y), (xt, _) = load_digits_rgb(32)
    keras.utils.set_random_seed(0)
    model = keras_mobile.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    report = export(model, tmp_path / "v3.tflite", "int8", representative_data=x[:200], num_calibration_steps=200)
    assert report.delegate_partitions == 1, report.undelegated_ops
    xt = np.round(xt)                                            # the uint8 input sees whole pixels
    top1 = (run_tflite(report.path, xt).argmax(-1) == model.predict(xt, verbose=0).argmax(-1)).mean()
    assert top1 >= 0.96, top1


def test_attention_quantizes_to_int8(tmp_path):
    """Mobile MQA (batch matmul + softmax) gets the converter's int8 kernels when the float islands
    for XNNPACK are turned off (tests/tflite/test_float_islands.py covers the default)."""
    m = keras_mobile.MobileNetV4HybridM(weights=None, input_shape=(128, 128, 3), classes=4,
                                        classifier_activation=None)
    x = np.random.default_rng(1).uniform(0, 255, (4, 128, 128, 3)).astype("float32")
    report = export(m, tmp_path / "h8.tflite", "int8", representative_data=x, num_calibration_steps=4,
                    float_islands=False)
    assert report.fully_integer, report.float_ops
    assert report.ops["BATCH_MATMUL"] == 16 and report.ops["SOFTMAX"] == 8


def test_representative_data_forms(tmp_path, small_model, images):
    import tensorflow as tf
    from PIL import Image
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(images[:3]):
        Image.fromarray(img.astype("uint8")).resize((50, 40)).save(folder / f"{i}.png")
    from keras_mobile.tflite.representative import samples
    for data in (tf.data.Dataset.from_tensor_slices((images, np.zeros(8))).batch(4),
                 [images[:2], images[2:4]], images):
        got = np.concatenate(list(samples(data, (SIZE, SIZE, 3), limit=5)))
        np.testing.assert_array_equal(got, images[:5] if len(got) == 5 else images[:4])
    from_folder = list(samples(str(folder), (SIZE, SIZE, 3), limit=10))
    assert len(from_folder) == 3 and from_folder[0].shape == (1, SIZE, SIZE, 3)
    report = export(small_model, tmp_path / "r.tflite", "int8", representative_data=str(folder),
                    progress=False, float_islands=False)      # random BN: see test_int8_is_fully_integer...
    assert report.fully_integer


@pytest.mark.parametrize("kwargs,match", [
    (dict(quantization="int4"), "quantization must be one of"),
    (dict(quantization="int8"), "needs representative_data"),
    (dict(quantization="float32", input_dtype="uint8"), "needs quantization='int8'"),
    (dict(quantization="int8", representative_data=np.zeros((2, 64, 64, 3))), r"shape \(64, 64, 3\).*\(96, 96, 3\)"),
    (dict(quantization="float16", true_calibration_ranges=True), "true_calibration_ranges=True .* quantization='float16'"),
    (dict(true_calibration_ranges=True), "true_calibration_ranges=True .* quantization='float32'"),
    (dict(quantization="int8", true_calibration_ranges=True), "needs representative_data"),
    (dict(true_calibration_ranges=0.9), r"true_calibration_ranges=0.9 .* quantization='float32'"),
    # a numpy quantile is a quantile: refused for the quantization, not as "must be True, False or ..."
    (dict(quantization="float16", true_calibration_ranges=np.float32(0.9)),
     r"true_calibration_ranges=np.float32\(0.9\) .* quantization='float16'"),
])
def test_bad_arguments(tmp_path, small_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export(small_model, tmp_path / "bad.tflite", **kwargs)
    # converter_for, which heads and QAT call directly, checks the same arguments itself
    with pytest.raises(ValueError, match=match):
        converter_for(small_model, **kwargs)
    assert not (tmp_path / "bad.tflite").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_true_calibration_ranges_are_refused_for_a_qat_model(tmp_path):
    """A QAT model's int8 scales are its fake-quant ranges: the option would be ignored, so it fails
    in the argument checks, before the converter is built."""
    import keras

    from keras_mobile.tflite import quantize_model
    inp = keras.Input((8, 8, 3))
    q = quantize_model(keras.Model(inp, keras.layers.Conv2D(4, 3)(inp), name="tiny_qat"))
    with pytest.raises(ValueError, match="true_calibration_ranges=True is for post-training int8: tiny_qat is a"):
        export(q, tmp_path / "q.tflite", "int8", true_calibration_ranges=True)
    assert not (tmp_path / "q.tflite").exists()


def test_dynamic_input_shape_is_rejected(tmp_path):
    m = keras_mobile.MobileNetV3Small(weights=None, input_shape=(None, None, 3), classes=3)
    with pytest.raises(ValueError, match="static input shape"):
        export(m, tmp_path / "d.tflite")


def test_run_tflite_checks_shape(tmp_path, small_model):
    path = _float(tmp_path, small_model)
    with pytest.raises(ValueError, match="expects inputs of shape"):
        run_tflite(path, np.zeros((1, 32, 32, 3)))


def test_resolve_settings_is_the_one_target_rule():
    from keras_mobile.tflite.export import resolve_settings
    assert resolve_settings() == ("float32", "float32", "float32")
    assert resolve_settings("int8") == ("int8", "uint8", "float32")
    assert resolve_settings(None, "edgetpu") == resolve_settings("int8", "edgetpu") == ("int8", "uint8", "uint8")
    assert resolve_settings(target="edgetpu", output_dtype="float32") == ("int8", "uint8", "float32")
    with pytest.raises(ValueError, match="target='edgetpu' means int8"):
        resolve_settings("float16", "edgetpu")
    with pytest.raises(ValueError, match="target must be"):
        resolve_settings(target="gpu")

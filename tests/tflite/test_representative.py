"""Calibration data checked before conversion, generator functions, and run_tflite on any batch.

A tiny conv model (with a keras_mobile-style 'preprocessing' Rescaling layer) keeps each
conversion to a couple of seconds."""
import os
import stat

import keras
import numpy as np
import pytest

from keras_mobile.tflite import export, run_tflite
from keras_mobile.tflite.representative import prepare, samples, takes_raw_pixels

SHAPE = (16, 16, 3)


@pytest.fixture(scope="module")
def pixel_model():
    """Takes raw [0, 255] pixels, like every keras_mobile classifier (per-channel mean/std, which the
    default int8 export rewrites as a depthwise conv: the check must still see it)."""
    inp = keras.Input(SHAPE)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x = keras.layers.Rescaling([1 / (255 * s) for s in std], offset=[-m / s for m, s in zip(mean, std)],
                               name="preprocessing")(inp)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3)(x), name="tiny")


@pytest.fixture
def conversions(monkeypatch):
    """Records every TFLiteConverter built (the converter still runs): a check that fails "before
    conversion" must leave it empty."""
    import tensorflow as tf
    built, real = [], tf.lite.TFLiteConverter.from_keras_model

    def recording(model, *args, **kwargs):
        built.append(model.name)
        return real(model, *args, **kwargs)
    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_keras_model", recording)
    return built


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).uniform(0, 255, (6,) + SHAPE).astype("float32")


def test_generator_function_tensorflow_style(tmp_path, pixel_model, pixels):
    """`def gen(): yield [x]` (what tf.lite's representative_dataset takes) calibrates the file."""
    def gen():
        for i in range(len(pixels)):
            yield [pixels[i:i + 1]]
    report = export(pixel_model, tmp_path / "g.tflite", "int8", representative_data=gen,
                    num_calibration_steps=6, progress=False)
    assert report.fully_integer
    ref = pixel_model.predict(pixels, verbose=0)
    out = run_tflite(tmp_path / "g.tflite", pixels)
    assert np.abs(out - ref).max() < 0.1 * np.abs(ref).max()


def test_export_calls_a_generator_function_once(tmp_path, pixel_model):
    """The dead-input check, the outlier screen (20+ samples) and calibration of one int8 export share
    one reading: a generator function (it may read files or a camera) is called once, not per step."""
    calls = []
    x = np.random.default_rng(1).uniform(0, 255, (24,) + SHAPE).astype("float32")

    def gen():
        calls.append(1)
        for i in range(len(x)):
            yield [x[i:i + 1]]
    report = export(pixel_model, tmp_path / "once.tflite", "int8", representative_data=gen,
                    num_calibration_steps=24, progress=False)
    assert report.fully_integer and len(calls) == 1, len(calls)


def test_samples_already_read_are_cut_to_the_limit_and_shape_checked(pixel_model, pixels):
    """converter_for given `Samples` calibrates on num_calibration_steps of them and names a wrong shape."""
    from keras_mobile.tflite.export import converter_for
    from keras_mobile.tflite.representative import Samples, read
    read_once = read(pixels, SHAPE, 6)
    assert len(read_once) == 6 and len(read(read_once, SHAPE, 4)) == 4
    conv = converter_for(pixel_model, "int8", read_once, num_calibration_steps=4, progress=False)
    assert len(list(conv.representative_dataset())) == 4
    wrong = Samples(s[:, :8, :8] for s in read_once)
    with pytest.raises(ValueError, match=r"shape \(8, 8, 3\), the model expects \(16, 16, 3\)"):
        converter_for(pixel_model, "int8", wrong, progress=False)


def test_one_shot_generator_keeps_its_first_batch(pixels):
    gen = (pixels[i:i + 2] for i in range(0, 6, 2))
    source = prepare(gen, SHAPE)
    got = np.concatenate(list(samples(source, SHAPE, limit=10)))
    np.testing.assert_array_equal(got, pixels)


def test_unit_range_data_for_pixel_model_fails_before_conversion(tmp_path, pixel_model, pixels, conversions):
    assert takes_raw_pixels(pixel_model)
    with pytest.raises(ValueError, match=r"ranges over \[0\.\d+, 1\].*raw \[0, 255\] pixels.*multiply by 255"):
        export(pixel_model, tmp_path / "u.tflite", "int8", representative_data=pixels / 255.0 + 0.0,
               progress=False)
    assert conversions == []
    assert not (tmp_path / "u.tflite").exists()


def test_normalised_data_for_pixel_model_fails_before_conversion(tmp_path, pixel_model, pixels, conversions):
    mean, std = np.array([0.485, 0.456, 0.406]) * 255, np.array([0.229, 0.224, 0.225]) * 255
    normalised = ((pixels - mean) / std).astype("float32")        # ImageNet mean/std: about [-2.1, 2.6]
    for data in (normalised, pixels / 127.5 - 1.0):                 # and the [-1, 1] convention
        with pytest.raises(ValueError, match=r"negative values.*raw \[0, 255\] pixels.*already normalised"):
            export(pixel_model, tmp_path / "n.tflite", "int8", representative_data=data, progress=False)
    assert conversions == []
    assert not (tmp_path / "n.tflite").exists()
    noisy = pixels + np.random.default_rng(0).normal(0, 4, pixels.shape).astype("float32")   # dips below 0
    assert noisy.min() < 0 and prepare(noisy, SHAPE, pixel_model) is not None


def test_unit_range_data_is_fine_for_a_model_without_preprocessing(pixels):
    inp = keras.Input(SHAPE)
    plain = keras.Model(inp, keras.layers.Conv2D(2, 3)(inp))
    assert not takes_raw_pixels(plain)
    assert prepare(pixels / 255.0, SHAPE, plain) is not None


@pytest.mark.parametrize("data,match", [
    ("missing_folder", "folder does not exist"),
    ("empty_folder", "has no images"),
    (iter([]), "yielded no samples"),
    (lambda: iter([]), "yielded no samples"),
    (np.zeros((2, 8, 8, 3), "float32"), r"shape \(8, 8, 3\), the model expects \(16, 16, 3\)"),
    (42, "representative_data must be"),
])
def test_bad_data_is_named_before_conversion(tmp_path, pixel_model, data, match, conversions):
    if isinstance(data, str) and data == "missing_folder":
        data = str(tmp_path / "nope")
    elif isinstance(data, str) and data == "empty_folder":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "notes.txt").write_text("no images here")
        data = tmp_path / "empty"
    with pytest.raises(ValueError, match=match):
        export(pixel_model, tmp_path / "bad.tflite", "int8", representative_data=data, progress=False)
    assert conversions == []
    assert not (tmp_path / "bad.tflite").exists()


def test_run_tflite_on_batched_file_and_many_images(tmp_path, pixel_model, pixels):
    """A batch-4 file runs 6 images (one full chunk + a padded one); a batch-1 file runs 6 too."""
    ref = pixel_model.predict(pixels, verbose=0)
    b4 = tmp_path / "b4.tflite"
    report = export(pixel_model, b4, batch_size=4)
    assert report.inputs[0].shape[0] == 4
    np.testing.assert_allclose(run_tflite(b4, pixels), ref, atol=1e-5)
    np.testing.assert_allclose(run_tflite(b4, pixels[:3]), ref[:3], atol=1e-5)
    b1 = tmp_path / "b1.tflite"
    old_umask = os.umask(0o022)
    try:
        export(pixel_model, b1)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(b1).st_mode) == 0o644   # the umask's mode, not mkstemp's 0600
    np.testing.assert_allclose(run_tflite(b1, pixels), ref, atol=1e-5)
    with pytest.raises(ValueError, match="no inputs"):
        run_tflite(b1, pixels[:0])


def test_rare_outlier_samples_do_not_set_the_int8_ranges(tmp_path):
    """Two of 60 calibration samples 200x larger than the rest: plain min/max calibration sizes the
    int8 scales by them and typical inputs quantize to a step or two (the collapse of a trained
    MobileNetV3Small, benchmarks/ptq_diagnose.py); the default export leaves them out."""
    from keras_mobile.tflite.export import _float_bytes
    from keras_mobile.tflite.representative import outlier_samples
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(4)(x), name="outliers")
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(60, 8, 8, 3)).astype("float32")
    calib[[7, 31]] *= 200.0
    assert outlier_samples(_float_bytes(model), list(calib[:, None])) == [7, 31]
    test = rng.normal(size=(50, 8, 8, 3)).astype("float32")
    ref = model.predict(test, verbose=0)
    errors = {}
    for drop in (True, False):
        path = tmp_path / f"drop_{drop}.tflite"
        export(model, path, "int8", representative_data=calib, num_calibration_steps=60, input_dtype="float32",
               progress=False, drop_calibration_outliers=drop)
        errors[drop] = float(np.abs(run_tflite(path, test) - ref).max() / np.abs(ref).max())
    assert errors[True] < 0.05, errors
    assert errors[False] > 4 * errors[True], errors

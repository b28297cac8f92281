"""Int8 PTQ with `true_calibration_ranges=True` calibrates each tensor with its own range: in an
EfficientFormer pool token mixer (x + ls * (pool(x) - x)), whose LayerScale'd branch feeds the
residual ADD in place, the int8 file keeps the branch's range instead of the ADD's (LiteRT's
calibrator records the in-place ADD's input after the ADD overwrote it)."""
import keras
import numpy as np
import pytest

from keras_mobile.layers.meta_blocks import meta_block_4d
from keras_mobile.tflite import export, run_tflite
from keras_mobile.tflite.inspect import make_interpreter


def _meta4d():
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 8))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    out = meta_block_4d(x, mlp_ratio=2, layer_scale=0.05, name="block")
    return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(out))


def _branch_range(path):
    """The int8 range of the first LayerScale product (ls1's MUL output) in the file."""
    it = make_interpreter(path, delegates=False)
    d = next(d for d in it.get_tensor_details() if "block-ls1" in d["name"] and d["dtype"] == np.int8)
    s, zp = d["quantization"]
    return (-128 - zp) * s, (127 - zp) * s


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = _meta4d()
    rng = np.random.default_rng(1)
    calib, x = (rng.uniform(0, 1, (n, 12, 12, 8)).astype("float32") for n in (24, 16))
    branch = keras.Model(model.input, model.get_layer("block-ls1").output).predict(calib, verbose=0)
    files = {}
    for true_ranges in (True, False):
        path = tmp_path_factory.mktemp("ranges") / f"m_{true_ranges}.tflite"
        export(model, path, "int8", representative_data=calib, input_dtype="float32", progress=False,
               drop_calibration_outliers=False, true_calibration_ranges=true_ranges)
        files[true_ranges] = path
    return model, x, branch, files


def test_the_layer_scale_branch_keeps_its_own_range(setup):
    model, x, branch, files = setup
    lo, hi = _branch_range(files[True])
    step = (hi - lo) / 255                       # the quantizer nudges the range so that 0 is a step
    assert lo <= branch.min() + step and hi >= branch.max() - step, ((lo, hi), (branch.min(), branch.max()))
    assert hi - lo <= 1.05 * (branch.max() - min(branch.min(), 0.0)), ((lo, hi), (branch.min(), branch.max()))


def test_the_recorded_range_was_the_residual_adds(setup):
    """What the fix is for (LiteRT 2.3 / TensorFlow 2.21): the converter's own calibration gives
    the branch about the whole residual range. When this fails, LiteRT records in-place inputs
    correctly and `calibration_ranges` can go."""
    model, x, branch, files = setup
    lo, hi = _branch_range(files[False])
    assert hi - lo > 10 * (branch.max() - branch.min())


def test_true_ranges_bring_the_int8_file_closer_to_keras(setup):
    model, x, branch, files = setup
    want = model.predict(x, verbose=0)
    err = {k: np.sqrt(np.mean((run_tflite(path, x) - want) ** 2)) for k, path in files.items()}
    assert err[True] < err[False], err


def _relu_conv():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))


def test_a_quantile_range_lets_the_rare_sample_clip():
    """true_calibration_ranges=q sizes a tensor by the q quantile of its per-sample maxima: one
    calibration sample 20x brighter than the rest sets the plain max, not the 0.9 quantile."""
    import tempfile
    model = _relu_conv()
    calib = np.random.default_rng(2).uniform(0, 1, (20, 8, 8, 3)).astype("float32")
    calib[7] *= 20
    peaks = keras.Model(model.input, model.get_layer("conv").output).predict(calib, verbose=0).max(axis=(1, 2, 3))
    ranges, notes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for q in (True, 0.9):
            path = f"{tmp}/m.tflite"
            report = export(model, path, "int8", representative_data=calib, input_dtype="float32", progress=False,
                            drop_calibration_outliers=False, true_calibration_ranges=q)
            notes[q] = report.extra["lowering"]
            it = make_interpreter(path, delegates=False)
            d = next(d for d in it.get_tensor_details() if "conv" in d["name"] and d["dtype"] == np.int8
                     and len(d["shape"]) == 4 and d["shape"][-1] == 4)
            s, zp = d["quantization"]
            ranges[q] = (127 - zp) * s
    step = ranges[True] / 255
    assert abs(ranges[True] - peaks.max()) <= 2 * step, (ranges, peaks.max())
    assert abs(ranges[0.9] - np.quantile(peaks, 0.9)) <= 2 * ranges[0.9] / 255, (ranges, np.quantile(peaks, 0.9))
    assert ranges[0.9] < peaks.max() / 5
    # each option gives its own reason: in-place inputs for True, the quantile for 0.9
    assert "own min/max (LiteRT's calibrator recorded in-place" in notes[True] and "quantile" not in notes[True]
    assert "0.9 quantile of their per-sample extremes (true_calibration_ranges=0.9" in notes[0.9]
    assert "in-place" not in notes[0.9]


@pytest.mark.parametrize("bad", [0, 1.5, "yes"])
def test_a_bad_range_quantile_is_refused_before_converting(bad):
    calib = np.random.default_rng(2).uniform(0, 1, (4, 8, 8, 3)).astype("float32")
    with pytest.raises(ValueError, match="true_calibration_ranges must be True, False or a quantile"):
        export(_relu_conv(), "/nonexistent/m.tflite", "int8", representative_data=calib, progress=False,
               true_calibration_ranges=bad)

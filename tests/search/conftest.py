"""What the search tests share: sklearn digits at 32 px, a MobileNetV3Small trained on them for one
epoch (module-scoped fixtures: each test module trains its own), and the check every search
result passes (.keras round trip, int8 TFLite export)."""
import numpy as np
import pytest

import keras


@pytest.fixture(scope="module")
def digits():
    """((x, y) 800 training images, (x, y) 200 validation images): raw [0, 255] RGB, 32x32."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = np.repeat(np.repeat(d.images, 4, 1), 4, 2)[..., None].repeat(3, -1) * (255 / 16.0)
    return (x[:800].astype("float32"), d.target[:800]), (x[1200:1400].astype("float32"), d.target[1200:1400])


@pytest.fixture(scope="module")
def parent(digits):
    from keras_mobile.applications import MobileNetV3Small
    keras.utils.set_random_seed(0)
    m = MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(*digits[0], epochs=1, batch_size=64, verbose=0)
    return m


def round_trip_and_export_int8(model, x, calibration, tmp_path, steps):
    """Saves `model` as .keras and reloads it (outputs on `x` must match), exports it to full
    int8 TFLite calibrated on `calibration` (uint8 input); returns (TFLite outputs, Keras outputs) on x."""
    from keras_mobile.tflite.export import export
    from keras_mobile.tflite.inspect import run_tflite
    model.save(tmp_path / "child.keras")
    again = keras.models.load_model(tmp_path / "child.keras")
    ref = np.asarray(model(x))
    np.testing.assert_allclose(np.asarray(again(x)), ref, atol=1e-6)
    report = export(model, str(tmp_path / "child.tflite"), quantization="int8",
                    representative_data=calibration, num_calibration_steps=steps, progress=False)
    assert report.inputs[0].dtype == "uint8"
    return run_tflite(str(tmp_path / "child.tflite"), x), ref

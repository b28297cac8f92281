"""Keras' own LiteRT export (`model.export(path, format="litert")`, Keras >= 3.13) on package models:
it works and computes what `keras_mobile.tflite.export(..., "float32")` computes; the differences
the README names (dynamic batch -> shape ops outside XNNPACK) are checked, not assumed."""
import numpy as np
import pytest

import keras_mobile
from keras_mobile.tflite import export, inspect, run_tflite

SIZE = 32
FAMILIES = ["MobileNetV3Small",
            pytest.param("MobileNetV4ConvS", marks=pytest.mark.slow),
            pytest.param("MobileOneS0", marks=pytest.mark.slow),
            pytest.param("EfficientFormerL1", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", FAMILIES)
def test_keras_litert_export_equals_package_float32_export(tmp_path, name):
    keras = pytest.importorskip("keras")
    if tuple(int(v) for v in keras.__version__.split(".")[:2]) < (3, 13):
        pytest.skip("format='litert' needs Keras >= 3.13")
    size = 64 if name.startswith("EfficientFormer") else SIZE
    model = getattr(keras_mobile, name)(weights=None, input_shape=(size, size, 3), classes=10)
    model.export(str(tmp_path / "keras.tflite"), format="litert", verbose=False)
    ours = export(model, tmp_path / "ours.tflite", progress=False)
    theirs = inspect(tmp_path / "keras.tflite")
    x = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32")
    np.testing.assert_allclose(run_tflite(tmp_path / "keras.tflite", x), run_tflite(ours.path, x), atol=1e-5)
    # Keras keeps the batch dynamic: shape ops the package's fixed-batch file does not have
    assert ours.dynamic_shape_ops == 0 and ours.delegate_partitions == 1
    assert theirs.dynamic_shape_ops >= 1 and theirs.delegate_partitions >= ours.delegate_partitions

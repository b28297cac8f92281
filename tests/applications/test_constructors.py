"""Constructor behaviour in the keras.applications style: arguments, errors, save/load, backends."""
import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_mobile
from keras_mobile.applications.imagenet_utils import decode_predictions, preprocess_input

SMALL = dict(weights=None, input_shape=(96, 96, 3))


@pytest.mark.parametrize("ctor", ["MobileNetV3Large", "MobileNetV3Small", "MobileNetV4ConvS",
                                  "MobileNetV4ConvM", "MobileNetV4HybridM"])
def test_builds_with_top_and_pooling(ctor):
    m = getattr(keras_mobile, ctor)(classes=7, **SMALL)
    y = m(np.zeros((1, 96, 96, 3), "float32"))
    assert y.shape == (1, 7)
    np.testing.assert_allclose(np.asarray(y).sum(), 1.0, rtol=1e-5)  # softmax
    f = getattr(keras_mobile, ctor)(include_top=False, pooling="avg", **SMALL)
    assert len(f.output.shape) == 2


@pytest.mark.parametrize("size", [96, 128, 160, 224, 256])
def test_input_sizes_multiple_of_32(size):
    m = keras_mobile.MobileNetV4ConvS(weights=None, include_top=False, input_shape=(size, size, 3))
    assert m.output.shape[1:3] == (size // 32, size // 32)


def test_hybrid_at_224_and_384():
    for size in (224, 384):
        m = keras_mobile.MobileNetV4HybridM(weights=None, include_top=False, input_shape=(size, size, 3))
        assert m.output.shape[1] == size // 32


def test_dynamic_spatial_size_for_conv_models():
    m = keras_mobile.MobileNetV3Small(weights=None, include_top=False, input_shape=(None, None, 3))
    assert m(np.zeros((1, 64, 96, 3), "float32")).shape == (1, 2, 3, 576)


def test_imagenet_weights_with_wrong_classes():
    with pytest.raises(ValueError, match="1000-class classifier.*classes=10"):
        keras_mobile.MobileNetV4ConvS(weights="imagenet", classes=10)


@pytest.mark.parametrize("shape,match", [((96, 96), "height, width, channels"),
                                         ((16, 16, 3), "at least 32"),
                                         ((96, 96, 1), "3 input channels")])
def test_bad_input_shape(shape, match):
    weights = "imagenet" if shape[-1] == 1 else None
    with pytest.raises(ValueError, match=match):
        keras_mobile.MobileNetV4ConvS(weights=weights, input_shape=shape, include_top=False)


def test_attention_models_need_static_size():
    with pytest.raises(ValueError, match="static input size"):
        keras_mobile.MobileNetV4HybridM(weights=None, input_shape=(None, None, 3))


def test_unknown_weights_tag():
    with pytest.raises(ValueError, match="e2400_r224_in1k"):
        keras_mobile.MobileNetV4ConvS(weights="e9999_in1k")


def test_missing_weights_file():
    with pytest.raises(ValueError, match="weights file not found: /nope/model.safetensors"):
        keras_mobile.MobileNetV4ConvS(weights="/nope/model.safetensors")


def test_bad_pooling():
    with pytest.raises(ValueError, match="pooling"):
        keras_mobile.MobileNetV3Small(include_top=False, pooling="sum", **SMALL)


def test_no_weights_published_for_ablation_variant():
    with pytest.raises(ValueError, match="no published timm weights"):
        keras_mobile.MobileNetV4HybridM(weights="imagenet", attention="mha")


def test_input_tensor():
    t = keras.Input((128, 128, 3))
    m = keras_mobile.MobileNetV3Small(weights=None, input_tensor=t, classes=3)
    assert m.input_shape == (None, 128, 128, 3)


def test_preprocessing_layer_applies_checkpoint_mean_std():
    with_pre = keras_mobile.MobileNetV4ConvS(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    without = keras_mobile.MobileNetV4ConvS(weights=None, input_shape=(64, 64, 3), classifier_activation=None,
                                            include_preprocessing=False)
    without.set_weights(with_pre.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    normed = keras_mobile.normalize_input(x)   # mobilenetv4_conv_small default tag: ImageNet mean/std
    np.testing.assert_allclose(np.asarray(with_pre(x)), np.asarray(without(normed)), atol=1e-4)
    assert preprocess_input(x) is x


@pytest.mark.parametrize("ctor", ["MobileNetV3Small", "MobileNetV4HybridM"])
def test_keras_save_load_round_trip(tmp_path, ctor):
    m = getattr(keras_mobile, ctor)(weights=None, input_shape=(128, 128, 3), classes=5, drop_path_rate=0.1)
    x = np.random.default_rng(1).uniform(0, 255, (2, 128, 128, 3)).astype("float32")
    path = str(tmp_path / "m.keras")
    m.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(m(x)), np.asarray(loaded(x)))


def test_decode_predictions():
    p = np.zeros((1, 1000), "float32")
    p[0, 1], p[0, 999] = 0.9, 0.1
    top = decode_predictions(p, top=2)[0]
    assert top[0][1] == "goldfish" and top[1][1] == "toilet_tissue"
    with pytest.raises(ValueError, match="1000"):
        decode_predictions(np.zeros((1, 10)))


@pytest.mark.slow   # the default tier runs HybridM under JAX in test_tf_and_jax_backends_agree
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_forward_on_other_backends(backend):
    if importlib.util.find_spec(backend) is None:  # find, don't import: torch + TF in one process crash
        pytest.skip(f"{backend} not installed")
    code = textwrap.dedent("""
        import numpy as np, keras, keras_mobile
        assert keras.backend.backend() == "%s"
        for ctor in ("MobileNetV3Small", "MobileNetV4HybridM"):
            m = getattr(keras_mobile, ctor)(weights=None, input_shape=(128, 128, 3), classes=4,
                                            classifier_activation=None)
            y = np.asarray(keras.ops.convert_to_numpy(m(np.ones((2, 128, 128, 3), "float32"))))
            assert y.shape == (2, 4) and np.isfinite(y).all(), y
        print("ok")
    """ % backend)
    env = dict(os.environ, KERAS_BACKEND=backend)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


def test_tf_and_jax_backends_agree(tmp_path):
    """Same weights, same input: the JAX backend reproduces the TF backend's logits."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax not installed")
    m = keras_mobile.MobileNetV4HybridM(weights=None, input_shape=(128, 128, 3), classes=4,
                                        classifier_activation=None)
    w = str(tmp_path / "w.weights.h5")
    m.save_weights(w)
    x = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(f"""
        import numpy as np, keras, keras_mobile
        m = keras_mobile.MobileNetV4HybridM(weights={w!r}, input_shape=(128, 128, 3), classes=4,
                                            classifier_activation=None)
        np.save({str(tmp_path / 'y.npy')!r}, keras.ops.convert_to_numpy(m(np.load({str(tmp_path / 'x.npy')!r}))))
    """)
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, KERAS_BACKEND="jax"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.asarray(m(x)), atol=1e-4)


@pytest.mark.parametrize("ctor", ["MobileNetV3Large", "MobileNetV4ConvS"])
def test_output_stride_16_dilates_the_last_stage(ctor):
    m32 = getattr(keras_mobile, ctor)(weights=None, include_top=False, input_shape=(128, 128, 3))
    m16 = getattr(keras_mobile, ctor)(weights=None, include_top=False, input_shape=(128, 128, 3),
                                      output_stride=16)
    assert m32.output.shape[1] == 4 and m16.output.shape[1] == 8
    assert m32.count_params() == m16.count_params()      # same weights, only the sampling grid changes
    assert any(getattr(l, "dilation_rate", (1, 1))[0] == 2 for l in m16.layers)

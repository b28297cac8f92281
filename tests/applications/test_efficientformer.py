"""EfficientFormer: timm parity (random weights, randomised BN, LayerScale and attention
biases), the distillation-head average, the fixed 7x7 attention grid."""
import numpy as np
import pytest

import keras_mobile
from keras_mobile.layers.attention_bias import relative_bias_index

from tests.timm_fixture import make_fixture

PARAMS = {"efficientformer_l1": 12289928, "efficientformer_l3": 31406000, "efficientformer_l7": 82229328}


def _check(timm_name):
    path, x, ref, params = make_fixture(timm_name)
    ctor = getattr(keras_mobile, "EfficientFormer" + timm_name[-2:].upper())
    m = ctor(weights=path, input_shape=x.shape[1:], include_preprocessing=False, classifier_activation=None)
    err = float(np.abs(np.asarray(m(x)) - ref).max())
    print(f"{timm_name}: max abs err {err:.3g}")
    assert err <= 1e-4 * max(1.0, float(np.abs(ref).max()))
    assert int(sum(np.prod(w.shape) for w in m.trainable_weights)) == params == PARAMS[timm_name]


def test_parity_l1():
    _check("efficientformer_l1")


@pytest.mark.slow
@pytest.mark.parametrize("timm_name", ["efficientformer_l3", "efficientformer_l7"])
def test_parity_large(timm_name):
    _check(timm_name)


def test_output_is_mean_of_class_and_distillation_heads():
    m = keras_mobile.EfficientFormerL1(weights=None, classes=5, classifier_activation=None)
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    import keras
    feats = keras.Model(m.input, m.get_layer("global_pool").output)(x)
    heads = [np.asarray(m.get_layer(n)(feats)) for n in ("head", "head_dist")]
    np.testing.assert_allclose(np.asarray(m(x)), (heads[0] + heads[1]) / 2, atol=1e-5)


def test_only_224_inputs():
    with pytest.raises(ValueError, match="224x224"):
        keras_mobile.EfficientFormerL1(weights=None, input_shape=(256, 256, 3))


def test_relative_bias_index_matches_timm_definition():
    idx = relative_bias_index(7)
    assert idx.shape == (49, 49) and idx[0, 48] == 6 * 7 + 6 and idx[10, 10] == 0
    assert (idx == idx.T).all()

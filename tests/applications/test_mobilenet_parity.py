"""Logits parity with timm on randomly initialised models (random weights + randomised BN stats).

Each case: timm builds the architecture, tests/timm_fixture.py randomises it and saves a
safetensors checkpoint, keras_mobile loads that file through `weights=<path>` and must
reproduce timm's logits within 1e-4 * max(1, max|logit|), with equal trainable parameters.
"""
import numpy as np
import pytest

import keras_mobile

from tests.timm_fixture import make_fixture

CASES = [
    ("mobilenetv3_large_100", "MobileNetV3Large", {}),
    ("mobilenetv3_small_100", "MobileNetV3Small", {}),
    ("mobilenetv3_small_075", "MobileNetV3Small", {"alpha": 0.75}),
    ("tf_mobilenetv3_large_minimal_100", "MobileNetV3Large", {"minimalistic": True}),
    ("tf_mobilenetv3_small_minimal_100", "MobileNetV3Small", {"minimalistic": True}),
    ("mobilenetv4_conv_small", "MobileNetV4ConvS", {}),
    ("mobilenetv4_conv_medium", "MobileNetV4ConvM", {}),
    ("mobilenetv4_conv_large", "MobileNetV4ConvL", {}),
    ("mobilenetv4_hybrid_medium", "MobileNetV4HybridM", {}),
    ("mobilenetv4_hybrid_large", "MobileNetV4HybridL", {}),
]


def trainable_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("timm_name,constructor,kwargs", CASES, ids=[c[0] for c in CASES])
def test_logits_match_timm(tmp_path, timm_name, constructor, kwargs):
    path, x, ref, timm_params = make_fixture(timm_name)
    model = getattr(keras_mobile, constructor)(
        weights=path, input_shape=x.shape[1:], include_preprocessing=False,
        classifier_activation=None, **kwargs)
    out = np.asarray(model(x, training=False))
    err = float(np.abs(out - ref).max())
    tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
    print(f"{timm_name}: max abs err {err:.3g} (tol {tol:.3g}), |logits| max {np.abs(ref).max():.3g}")
    assert err <= tol
    assert trainable_params(model) == timm_params
    assert (out.argmax(-1) == ref.argmax(-1)).all()


def test_non_default_input_size_matches_timm(tmp_path):
    """Symmetric padding must stay exact at sizes where TF 'same' would differ (odd maps)."""
    path, x, ref, _ = make_fixture("mobilenetv4_conv_small", size=160)
    model = keras_mobile.MobileNetV4ConvS(weights=path, input_shape=(160, 160, 3),
                                          include_preprocessing=False, classifier_activation=None)
    assert np.abs(np.asarray(model(x)) - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())

"""The model registry's classifier names and build-time feature endpoints; block-row checks."""
import keras
import numpy as np
import pytest

import keras_mobile as km
from keras_mobile import training
from keras_mobile.applications import registry
from keras_mobile.applications.blocks import BlockSpec
from keras_mobile.applications.features import pyramid_outputs


@pytest.mark.parametrize("name, size", [("MobileNetV3Small", 64), ("MobileNetV4HybridM", 64),
                                        ("EfficientFormerL1", 224)])
def test_classifier_names_and_endpoints_come_from_the_build(name, size):
    entry = registry.entry(name)
    model = entry.constructor(weights=None, input_shape=(size, size, 3), classes=5)
    # the registry's classifier layers are exactly the Dense layers that produce the 5 logits
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense) and l.units == 5]
    assert sorted(l.name for l in training.classifier_layers(model)) == sorted(l.name for l in dense)
    assert len(dense) == len(entry.classifier)
    # endpoints recorded while building; the registry holds the same names for the constructor
    assert model.feature_endpoints == entry.feature_endpoints()
    x = np.zeros((1, size, size, 3), "float32")
    maps = keras.Model(model.inputs, pyramid_outputs(model))(x)
    for level, t in maps.items():
        stride = 16 if level == "P4_expanded" else 2 ** int(level[1])
        assert tuple(t.shape[1:3]) == (size // stride, size // stride), level


def test_output_stride_16_endpoints_and_alias_tables():
    entry = registry.entry("MobileNetV3Large")
    e16 = entry.feature_endpoints(output_stride=16)
    assert "P5" not in e16 and "P4_expanded" not in e16
    assert e16["P4"] == entry.feature_endpoints()["P5"]   # the atrous last stage ends at stride 16
    e, spec = registry.spec_of("MobileNetV3SmallMinimal")
    assert e.name == "MobileNetV3Small" and spec.act == "relu" and spec.padding == "same"


def test_model_without_endpoints_is_refused_clearly():
    plain = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3)], name="plain")
    with pytest.raises(ValueError, match="plain has no recorded feature endpoints"):
        pyramid_outputs(plain)


def test_block_rows_are_checked_against_the_registry():
    with pytest.raises(ValueError, match="unknown block type 'xx'"):
        BlockSpec("xx", 8)
    with pytest.raises(ValueError, match="needs its output width"):
        BlockSpec("ir")
    with pytest.raises(ValueError, match="mid .* needs a positive int on a row with a hidden width"):
        BlockSpec("cn", 8, mid=16)
    with pytest.raises(ValueError, match="EfficientFormerL1 supports output_stride=32 only"):
        km.EfficientFormerL1(weights=None, include_top=False, output_stride=16)

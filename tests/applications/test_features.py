import pytest

import keras_mobile as km
from keras_mobile.applications.features import feature_extractor, pyramid_outputs

# (constructor, input size) -> expected channels of P2..P5 and P4_expanded
EXPECTED = {
    "MobileNetV3Large": {"P2": 24, "P3": 40, "P4": 112, "P5": 960, "P4_expanded": 672},
    "MobileNetV3Small": {"P2": 16, "P3": 24, "P4": 48, "P5": 576, "P4_expanded": 288},
    "MobileNetV4ConvS": {"P2": 32, "P3": 64, "P4": 96, "P5": 960, "P4_expanded": 576},
    "MobileOneS0": {"P2": 48, "P3": 128, "P4": 256, "P5": 1024, "P4_expanded": 256},
    "EfficientFormerL1": {"P2": 48, "P3": 96, "P4": 224, "P5": 448, "P4_expanded": 224},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("size", [224, 256])
def test_pyramid_strides_and_channels(name, size):
    if name.startswith("EfficientFormer") and size != 224:
        with pytest.raises(ValueError):
            getattr(km, name)(include_top=False, weights=None, input_shape=(size, size, 3))
        return
    model = getattr(km, name)(include_top=False, weights=None, input_shape=(size, size, 3))
    maps = pyramid_outputs(model)
    for level, channels in EXPECTED[name].items():
        stride = 16 if level == "P4_expanded" else 2 ** int(level[1])
        assert tuple(maps[level].shape[1:]) == (size // stride, size // stride, channels), level


def test_include_top_model_stops_at_head():
    model = km.MobileNetV4ConvS(weights=None, input_shape=(128, 128, 3))
    maps = pyramid_outputs(model)
    assert maps["P5"].shape[1:3] == (4, 4)


def test_feature_extractor_dict_outputs_and_output_stride():
    fe = feature_extractor("MobileNetV3Small", levels=("P3", "P4"), input_shape=(128, 128, 3),
                           output_stride=16)
    shapes = {k: tuple(v.shape[1:3]) for k, v in fe.output.items()}
    assert shapes == {"P3": (16, 16), "P4": (8, 8)}
    with pytest.raises(ValueError, match="not available"):
        feature_extractor("MobileNetV3Small", levels=("P5",), input_shape=(128, 128, 3),
                          output_stride=16)
    with pytest.raises(ValueError, match="unknown backbone"):
        feature_extractor("NoSuchNet")


def test_feature_extractor_from_built_model():
    base = km.MobileOneS0(include_top=False, weights=None, input_shape=(128, 128, 3))
    fe = feature_extractor(base, levels=("P3", "P4", "P5"))
    out = fe(__import__("numpy").zeros((1, 128, 128, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "P3": (1, 16, 16, 128), "P4": (1, 8, 8, 256), "P5": (1, 4, 4, 1024)}

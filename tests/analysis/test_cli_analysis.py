"""CLI smoke: list / info / profile / benchmark on a small model through keras_mobile.cli.main."""
import json

import pytest

from keras_mobile.applications.registry import entry, names
from keras_mobile.cli import main


def test_registry_lists_every_constructor_once_with_its_family():
    import keras_mobile
    ns = names()
    public = [n for n in dir(keras_mobile.applications) if n[:1].isupper()]
    assert sorted(ns) == sorted(public) and len(ns) == 15
    assert entry("mobilenetv4convs") is entry("MobileNetV4ConvS")          # case-insensitive
    assert entry("MobileNetV4ConvS").constructor is keras_mobile.MobileNetV4ConvS
    assert [entry(n).family for n in ("MobileNetV3Small", "MobileNetV4HybridM", "MobileOneS2",
                                      "EfficientFormerL3")] == ["mobilenetv3", "mobilenetv4", "mobileone",
                                                                "efficientformer"]
    # default input sizes are the default checkpoints' (README table), without building a model
    assert [entry(n).default_size for n in ("MobileNetV4ConvS", "MobileNetV4ConvM", "MobileNetV4ConvL")] == \
        [224, 256, 384]
    with pytest.raises(ValueError, match="unknown model 'ResNet50'; known: MobileNetV3Large"):
        entry("ResNet50")


def test_constructors_show_family_arguments_and_docs():
    import inspect

    import keras_mobile
    sig = inspect.signature(keras_mobile.MobileNetV3Small).parameters
    assert sig["alpha"].default == 1.0 and sig["minimalistic"].default is False
    assert inspect.signature(keras_mobile.MobileOneS0).parameters["inference_mode"].default is False
    assert "minimalistic:" in keras_mobile.MobileNetV3Small.__doc__
    assert "Args:" in keras_mobile.EfficientFormerL1.__doc__ and "224x224" in keras_mobile.EfficientFormerL1.__doc__
    model = keras_mobile.MobileNetV3Small(weights=None, alpha=0.5, minimalistic=True, input_shape=(64, 64, 3))
    assert model.name == "MobileNetV3SmallMinimal" and model.timm_name == "tf_mobilenetv3_small_minimal_050"


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "MobileNetV4ConvS" in out and "MobileNetV3Small" in out


def test_info(capsys):
    assert main(["info", "MobileNetV3Small", "--image-size", "96"]) == 0
    assert "MobileNetV3Small" in capsys.readouterr().out


def test_profile(capsys):
    assert main(["profile", "MobileNetV3Small", "--image-size", "96", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "| layer |" in out and "total" in out


def test_benchmark(capsys, tmp_path):
    out_json = tmp_path / "b.json"
    assert main(["benchmark", "MobileNetV3Small", "--image-size", "64", "--runs", "2", "--batch", "2",
                 "--roofline", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "keras_b1_ms" in out and "roofline_ms" in out
    rows = json.loads(out_json.read_text())
    assert rows[0]["model"] == "MobileNetV3Small" and rows[0]["keras_b1_ms"] > 0

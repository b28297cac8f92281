"""CLI smoke: list / info / profile / benchmark on a small model through keras_mobile.cli.main."""
import json

from keras_mobile.analysis.registry import names
from keras_mobile.cli import main


def test_registry_is_introspected():
    ns = names()
    assert "MobileNetV4ConvS" in ns and "MobileNetV3Large" in ns
    assert "preprocess_input" not in ns and "decode_predictions" not in ns


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

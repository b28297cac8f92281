"""The keras-mobile command line, run in-process."""
import json

from keras_mobile.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("MobileNetV4ConvS", "MobileOneS0", "EfficientFormerL1", "MobileNetV3Large"):
        assert name in out


def test_info_and_profile(capsys):
    assert main(["info", "MobileNetV3Small"]) == 0
    out = capsys.readouterr().out
    assert "2,542,856 trainable params" in out and "lamb_in1k" in out
    assert main(["profile", "MobileNetV4ConvS", "--image-size", "224", "--top", "5"]) == 0
    assert "186,005,568" in capsys.readouterr().out   # timm: 186.01 M MACs


def test_export_int8_with_edgetpu_analysis(tmp_path, capsys):
    out = tmp_path / "m.tflite"
    assert main(["export", "MobileNetV4ConvS", "--image-size", "64", "--classes", "5", "--quant", "int8",
                 "--calib-synthetic", "8", "--out", str(out), "--edgetpu"]) == 0
    text = capsys.readouterr().out
    assert out.exists() and "every op runs in integer" in text and "EdgeTPU analysis" in text


def test_roofline_plot(tmp_path, capsys):
    png = tmp_path / "r.png"
    assert main(["roofline", "MobileNetV3Small", "MobileNetV4ConvS", "--plot", str(png)]) == 0
    assert png.stat().st_size > 5000 and "MobileNetV4ConvS" in capsys.readouterr().out


def test_demo_smoke(tmp_path):
    """The README's main job on a tiny budget: trains (loss goes down), exports, verifies."""
    assert main(["demo", "--epochs", "2", "--image-size", "32", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["loss_last_epoch"] < res["loss_first_epoch"]
    assert res["tflite_float32"]["accuracy"] == res["keras_accuracy"]
    assert res["int8_vs_keras_top1_agreement"] >= 0.9
    assert (tmp_path / "predictions.png").stat().st_size > 1000

"""The keras-mobile command line, run in-process (and once as a real process)."""
import json
import os
import subprocess
import sys

import pytest

from keras_mobile.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    assert "TensorSpec" not in text and "Saved artifact" not in text   # Keras' export summary stays quiet


def test_export_int8_fully_integer_on_request(tmp_path, capsys):
    """Random weights on random pixels put residual ADDs outside XNNPACK's int8 scale window: the
    default file runs them as float islands, --no-float-islands keeps a fully integer file."""
    args = ["export", "MobileNetV3Small", "--image-size", "32", "--classes", "3", "--quant", "int8",
            "--calib-synthetic", "4"]
    assert main(args + ["--out", str(tmp_path / "d.tflite")]) == 0
    assert "float islands" in capsys.readouterr().out
    assert main(args + ["--out", str(tmp_path / "i.tflite"), "--no-float-islands"]) == 0
    text = capsys.readouterr().out
    assert "every op runs in integer" in text and "float islands" not in text


def test_roofline_plot(tmp_path, capsys):
    png = tmp_path / "r.png"
    assert main(["roofline", "MobileNetV3Small", "MobileNetV4ConvS", "--plot", str(png)]) == 0
    assert png.stat().st_size > 5000 and "MobileNetV4ConvS" in capsys.readouterr().out


def test_demo_smoke(tmp_path):
    """The README's main job on a tiny budget: trains (loss goes down), exports, verifies."""
    assert main(["demo", "--epochs", "2", "--image-size", "32", "--train-images", "640",
                 "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["loss_last_epoch"] < res["loss_first_epoch"]
    assert res["tflite_float32"]["accuracy"] == res["keras_accuracy"]
    assert res["int8_vs_keras_top1_agreement"] >= 0.9
    assert (tmp_path / "predictions.png").stat().st_size > 1000


@pytest.mark.parametrize("argv,message", [
    (["info", "NoSuchNet"], "unknown model 'NoSuchNet'"),
    (["demo", "--model", "NoSuchNet"], "unknown model 'NoSuchNet'"),
    (["info", "MobileNetV3Small", "--weights", "missing/ckpt.safetensors"], "weights file not found"),
    (["info", "MobileNetV3Small", "--weights", "no_such_tag"], "unknown weights 'no_such_tag'"),
    (["export", "MobileNetV3Small", "--quant", "int8", "--calib-dir", "{tmp}/no_such_folder"],
     "folder does not exist"),
    (["export", "MobileNetV3Small", "--edgetpu", "--quant", "float16"], "--edgetpu exports full int8"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"keras-mobile {argv[0]}: error: ") and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--debug", "info", "NoSuchNet"], ["info", "NoSuchNet", "--debug"]])
def test_debug_shows_the_exception(argv):
    with pytest.raises(ValueError, match="unknown model"):
        main(argv)


def test_weights_none_means_random_init(capsys):
    assert main(["info", "MobileNetV3Small", "--image-size", "64", "--weights", "None"]) == 0
    assert "MobileNetV3Small" in capsys.readouterr().out


def test_console_user_error_without_traceback(tmp_path):
    """The real command line: exit status 2, the error on one line, no traceback."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-m", "keras_mobile.cli", "info", "MobileNetV3Small", "--weights",
                        str(tmp_path / "absent.safetensors")], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [f"keras-mobile info: error: weights file not found: {tmp_path / 'absent.safetensors'}"]

"""`keras-mobile adapt` / `slim` user errors: one line, exit code 2, no traceback; a small slim run."""
import json

import pytest

from keras_mobile.cli import main


@pytest.mark.parametrize("command", ["adapt", "slim"])
@pytest.mark.parametrize("argv, msg", [
    (["MobileNetV3Small", "--budget-ms", "0", "--out", "o"], "--budget-ms must be positive"),
    (["MobileNetV3Small", "--budget-ms", "1", "--data", "mnist", "--out", "o"], "--data must be digits"),
    (["missing.keras", "--budget-ms", "1", "--out", "o"], "missing.keras does not exist"),
    (["NoSuchNet", "--budget-ms", "1", "--out", "o", "--pretrain-epochs", "0"], "unknown model 'NoSuchNet'"),
])
def test_user_errors(command, argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main([command] + argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and msg in err and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"keras-mobile {command}: error:")


def test_slim_reaches_the_budget_and_names_the_minimum_of_an_impossible_one(capsys, tmp_path):
    argv = ["slim", "MobileNetV3Small", "--latency", "edgetpu", "--image-size", "32", "--pretrain-epochs", "0",
            "--steps", "2", "--finetune-epochs", "0"]
    assert main(argv + ["--budget-ms", "0.15", "--out", str(tmp_path / "a")]) == 0
    log = json.load(open(tmp_path / "a" / "slim.json"))
    assert log["done"] and log["predicted_ms"] <= 0.15 < log["start_ms"]
    assert "ms predicted (edgetpu; budget 0.15)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(argv + ["--budget-ms", "0.001", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "below what slimming can reach" in err and "Traceback" not in err

"""`keras-mobile adapt` user errors: one line, exit code 2, no traceback."""
import pytest

from keras_mobile.cli import main


@pytest.mark.parametrize("argv, msg", [
    (["MobileNetV3Small", "--budget-ms", "0", "--out", "o"], "--budget-ms must be positive"),
    (["MobileNetV3Small", "--budget-ms", "1", "--data", "mnist", "--out", "o"], "--data must be digits"),
    (["missing.keras", "--budget-ms", "1", "--out", "o"], "missing.keras does not exist"),
    (["NoSuchNet", "--budget-ms", "1", "--out", "o", "--pretrain-epochs", "0"], "unknown model 'NoSuchNet'"),
])
def test_user_errors(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["adapt"] + argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and msg in err and "Traceback" not in err and err.count("\n") == 1

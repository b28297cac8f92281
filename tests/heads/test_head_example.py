"""examples/head_example.py: a bad --data is refused by the parser (exit 2, the value named) before
detect.py or segment.py import TensorFlow or create their --out folder."""
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.mark.parametrize("script", ["detect.py", "segment.py"])
@pytest.mark.parametrize("data", ["voc", "tfds:"])
def test_bad_data_exits_2_before_the_out_folder_exists(tmp_path, script, data):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), "--data", data, "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert f"--data must be 'shapes' or 'tfds:NAME', got {data!r}" in run.stderr
    assert not out.exists()

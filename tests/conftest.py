import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """No test touches the user's ~/.keras or Hugging Face cache, or the network."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("KERAS_HOME", str(root / "keras_home"))
    monkeypatch.setenv("HF_HOME", str(root / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf_home" / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # closed port: any real download fails fast
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")

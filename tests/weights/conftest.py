import pytest

from tests.weights.checkpoints import build, timm_checkpoint_bytes
from tests.weights.hub_server import HubServer


@pytest.fixture(scope="module")
def checkpoint():
    """(timm-format safetensors bytes, the Keras model that holds exactly those weights)."""
    source = build(None)
    return timm_checkpoint_bytes(source), source


@pytest.fixture
def hub(monkeypatch):
    """A loopback hub; HF_ENDPOINT points at it."""
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture(autouse=True)
def clean_cache(tmp_path, monkeypatch):
    """An empty converted cache and Hugging Face cache per test."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))

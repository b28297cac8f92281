"""Written files get the user's umask (0644 under umask 022), not mkstemp's private 0600."""
import os
import stat

import numpy as np
import pytest

from keras_mobile.files import atomic_path, umask_mode, write_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_atomic_mode_and_content(tmp_path, umask_022):
    path = tmp_path / "sub" / "a.bin"
    write_atomic(str(path), b"abc")
    assert path.read_bytes() == b"abc" and _mode(path) == 0o644 == umask_mode()
    os.umask(0o077)
    write_atomic(str(path), b"xyz")
    assert path.read_bytes() == b"xyz" and _mode(path) == 0o600


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, umask_022):
    path = tmp_path / "b.bin"
    write_atomic(str(path), b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("writer failed")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["b.bin"]


def test_weights_cache_and_timm_checkpoint_modes(tmp_path, umask_022, monkeypatch):
    import keras_mobile
    from keras_mobile.training import save_timm_checkpoint
    from keras_mobile.weights import cache
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    data = cache.write("arch.tag", {"w": np.ones((2, 2), "float32")})
    assert _mode(data) == 0o644 and all(_mode(p) == 0o644 for p in cache.paths("arch.tag"))
    m = keras_mobile.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=3)
    ckpt = save_timm_checkpoint(m, str(tmp_path / "m.safetensors"))
    assert _mode(ckpt) == 0o644 and sorted(os.listdir(tmp_path)) == ["home", "m.safetensors"]

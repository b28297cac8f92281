"""Converted-weights cache under KERAS_HOME: atomic writes, size + sha256 verified on read.

Layout: $KERAS_HOME/keras_mobile/<timm_name>.<tag>.safetensors (Keras layouts, timm keys)
plus a .json sidecar holding its size and sha256. A file that fails verification is removed
(and re-made by the caller), so a bad entry never survives.
"""
import hashlib
import json
import os

from safetensors.numpy import load_file, save_file

from keras_mobile.files import temp_path, umask_mode
from keras_mobile.weights.errors import WeightsError

FORMAT_VERSION = 1


def cache_dir():
    root = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(root, "keras_mobile")


def paths(cache_name):
    base = os.path.join(cache_dir(), cache_name)
    return base + ".safetensors", base + ".json"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read(cache_name):
    """Keras-layout tensors, or None when there is no valid entry (a bad one is deleted)."""
    data_path, meta_path = paths(cache_name)
    if not (os.path.isfile(data_path) and os.path.isfile(meta_path)):
        return None
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        ok = (meta.get("format") == FORMAT_VERSION and os.path.getsize(data_path) == meta["size"]
              and sha256(data_path) == meta["sha256"])
        tensors = load_file(data_path) if ok else None
    except Exception:  # unreadable sidecar, or safetensors' own error types
        tensors = None
    if tensors is None:
        remove(cache_name)
    return tensors


def write(cache_name, tensors, source_sha256=None):
    """Writes data then sidecar, each to a temp file in the same folder and renamed into place."""
    data_path, meta_path = paths(cache_name)
    os.makedirs(os.path.dirname(data_path), exist_ok=True)
    tmp_data, tmp_meta = _tmp(data_path), _tmp(meta_path)
    try:
        save_file(tensors, tmp_data, metadata={"format": str(FORMAT_VERSION)})
        os.chmod(tmp_data, umask_mode())   # safetensors writes a new file: mode 0600 otherwise
        meta = {"format": FORMAT_VERSION, "size": os.path.getsize(tmp_data), "sha256": sha256(tmp_data),
                "source_sha256": source_sha256}
        with open(tmp_meta, "w") as f:
            json.dump(meta, f)
        os.replace(tmp_data, data_path)
        os.replace(tmp_meta, meta_path)
    except BaseException:
        raise
    finally:
        for p in (tmp_data, tmp_meta):
            if os.path.exists(p):
                os.remove(p)
    return data_path


def _tmp(path):
    return temp_path(path)   # unique, in the same folder, with the user's umask (mkstemp alone gives 0600)


def remove(cache_name):
    for p in paths(cache_name):
        if os.path.exists(p):
            os.remove(p)

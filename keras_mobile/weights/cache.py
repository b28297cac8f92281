"""Converted-weights cache under KERAS_HOME: atomic writes, size + sha256 verified on read.

Layout: $KERAS_HOME/keras_mobile/<timm_name>.<tag>.safetensors (Keras layouts, timm keys)
plus a .json sidecar holding its size and sha256 and where it came from (the source file's
sha256, the hub revision). A file that fails verification is removed (and re-made by the
caller), so a bad entry never survives. `locked` serialises readers and writers of one entry
across processes (filelock), so two processes converting one checkpoint write it once.
"""
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass

from safetensors.numpy import load_file, save_file

from keras_mobile.files import atomic_path

FORMAT_VERSION = 2  # 2: sidecar records source_sha256 and revision; layer names use "-" (layers.naming)


@dataclass(frozen=True)
class Entry:
    """A verified cache entry: Keras-layout tensors, the file they came from and its sidecar."""
    tensors: dict
    path: str
    source_sha256: str | None
    revision: str | None

    def is_current(self, remote):
        """Whether this entry was converted from the file the hub publishes now (hub.Remote).

        LFS files are compared by content (sha256), so a new commit that leaves the file
        unchanged keeps the entry; other files by revision. Nothing to compare: current."""
        if remote.sha256 and self.source_sha256:
            return remote.sha256 == self.source_sha256
        if remote.revision and self.revision:
            return remote.revision == self.revision
        return True


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


@contextlib.contextmanager
def locked(cache_name):
    """Holds an inter-process lock on one entry; yields None, or the OSError that prevented
    locking (an unwritable cache location: the caller then loads in memory and writes nothing)."""
    import filelock
    lock_path = os.path.join(cache_dir(), ".locks", cache_name + ".lock")
    try:
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        lock = filelock.FileLock(lock_path)
        lock.acquire()
    except OSError as e:
        lock, error = None, e
    else:
        error = None
    try:
        yield error
    finally:
        if lock is not None:
            lock.release()


def read(cache_name):
    """The verified Entry, or None when there is no valid entry (a bad one is deleted)."""
    data_path, meta_path = paths(cache_name)
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        ok = (meta.get("format") == FORMAT_VERSION and os.path.getsize(data_path) == meta["size"]
              and sha256(data_path) == meta["sha256"])
        tensors = load_file(data_path) if ok else None
    except FileNotFoundError:
        return None
    except Exception:  # unreadable sidecar, or safetensors' own error types
        tensors = None
    if tensors is None:
        with contextlib.suppress(OSError):  # a read-only cache keeps its bad entry; it is not used
            remove(cache_name)
        return None
    return Entry(tensors, data_path, meta.get("source_sha256"), meta.get("revision"))


def write(cache_name, tensors, source_sha256=None, revision=None):
    """Writes data then sidecar, each to a temp file in the same folder and renamed into place.
    Raises OSError when the cache location cannot be written (nothing is left behind)."""
    data_path, meta_path = paths(cache_name)
    # the inner context (data) is renamed into place first: a sidecar never names missing data
    with atomic_path(meta_path) as tmp_meta, atomic_path(data_path) as tmp_data:
        save_file(tensors, tmp_data, metadata={"format": str(FORMAT_VERSION)})
        meta = {"format": FORMAT_VERSION, "size": os.path.getsize(tmp_data), "sha256": sha256(tmp_data),
                "source_sha256": source_sha256, "revision": revision}
        with open(tmp_meta, "w") as f:
            json.dump(meta, f)
    return data_path


def _remove_if_present(path):
    """Removes a file; one already gone (another process, a renamed temp file) is fine."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def remove(cache_name):
    for p in paths(cache_name):
        _remove_if_present(p)

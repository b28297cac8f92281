"""The cache and the hub are trusted only as far as they prove: the download's sha256 must be
the one the hub publishes, the cache follows the hub's file (online) and outlives it (offline),
and a cache that cannot be written never costs the user their weights."""
import hashlib
import json
import os
import stat

import pytest

import keras_mobile.weights.loader as loader
from keras_mobile.weights import WeightsError, cache

from tests.weights.checkpoints import INFO, build, cache_entries, same_outputs, timm_checkpoint_bytes


@pytest.fixture(scope="module")
def second_checkpoint():
    """Another file for the same architecture (an upstream update)."""
    source = build(None)
    return timm_checkpoint_bytes(source, seed=1), source


def hf_blobs():
    """Files huggingface_hub holds in its cache (blobs), lock files aside."""
    root = os.environ["HF_HUB_CACHE"]
    return [f for d, _, fs in os.walk(root) if os.sep + "blobs" in d for f in fs if not f.endswith(".lock")]


def sidecar():
    with open(cache.paths(INFO.cache_name)[1]) as f:
        return json.load(f)


def test_download_not_matching_the_published_sha256_is_refused(hub, checkpoint):
    data, source = checkpoint
    published = hashlib.sha256(b"the file the hub describes").hexdigest()
    hub.add(INFO.hf_hub_id, data, sha256=published)
    with pytest.raises(WeightsError, match=f"differs from the sha256 the hub publishes for it \\({published}\\)"):
        build("imagenet")
    assert cache_entries() == [] and hf_blobs() == []  # nothing kept, in either cache
    hub.add(INFO.hf_hub_id, data)  # the hub now describes the file it serves
    assert same_outputs(build("imagenet"), source) == 0.0


def test_sidecar_records_source_sha256_and_revision(hub, checkpoint):
    data, _ = checkpoint
    commit = hub.add(INFO.hf_hub_id, data)
    build("imagenet")
    meta = sidecar()
    assert meta["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["revision"] == commit


def test_upstream_update_is_picked_up_online_and_offline_keeps_the_cache(
        hub, checkpoint, second_checkpoint, monkeypatch):
    old, old_source = checkpoint
    new, new_source = second_checkpoint
    hub.add(INFO.hf_hub_id, old)
    assert same_outputs(build("imagenet"), old_source) == 0.0
    commit = hub.add(INFO.hf_hub_id, new)
    assert same_outputs(build("imagenet"), new_source) == 0.0  # online: the new commit's file
    assert sidecar()["revision"] == commit
    hub.add(INFO.hf_hub_id, old)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    assert same_outputs(build("imagenet"), new_source) == 0.0  # offline: the cache, no request
    assert len(hub.requests) == n


def test_offline_converts_again_from_the_hugging_face_cache(hub, checkpoint, monkeypatch):
    """The converted entry is gone but huggingface_hub's cache holds the verified file."""
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    build("imagenet")
    cache.remove(INFO.cache_name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    assert same_outputs(build("imagenet"), source) == 0.0
    assert len(hub.requests) == n and cache.read(INFO.cache_name) is not None


def test_new_commit_with_the_same_file_keeps_the_conversion(hub, checkpoint, monkeypatch):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    build("imagenet")
    hub.add(INFO.hf_hub_id, data)  # e.g. a README edit: model.safetensors unchanged
    monkeypatch.setattr(loader.convert, "to_keras_layout", lambda *a, **k: pytest.fail("converted again"))
    n = len(hub.requests)
    assert same_outputs(build("imagenet"), source) == 0.0
    assert [m for m, _ in hub.requests[n:]] == ["HEAD"]


def test_invalid_keras_home_warns_and_loads_in_memory(hub, checkpoint, monkeypatch, tmp_path):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    not_a_dir = tmp_path / "keras_home_is_a_file"
    not_a_dir.write_text("")
    monkeypatch.setenv("KERAS_HOME", str(not_a_dir))
    with pytest.warns(UserWarning, match=f"could not be cached in {not_a_dir}.*loaded in memory"):
        model = build("imagenet")
    assert same_outputs(model, source) == 0.0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_warns_and_loads_in_memory(hub, checkpoint):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    os.makedirs(cache.cache_dir())
    os.chmod(cache.cache_dir(), stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.warns(UserWarning, match="could not be cached"):
            model = build("imagenet")
    finally:
        os.chmod(cache.cache_dir(), stat.S_IRWXU)
    assert same_outputs(model, source) == 0.0 and cache_entries() == []


def test_failed_cache_write_warns_and_leaves_no_file(hub, checkpoint, monkeypatch):
    """A write that fails midway (disk full, permission lost) leaves no temp file or entry."""
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)

    def full_disk(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cache, "save_file", full_disk)
    with pytest.warns(UserWarning, match="No space left on device"):
        model = build("imagenet")
    assert same_outputs(model, source) == 0.0 and cache_entries() == []


def test_remove_tolerates_files_another_process_removed(hub, checkpoint, monkeypatch):
    data, _ = checkpoint
    hub.add(INFO.hf_hub_id, data)
    build("imagenet")
    real_remove = os.remove

    def removed_first_by_someone_else(path):
        real_remove(path)  # the other process wins the race ...
        real_remove(path)  # ... so ours finds nothing: FileNotFoundError
    monkeypatch.setattr(cache.os, "remove", removed_first_by_someone_else)
    cache.remove(INFO.cache_name)
    assert cache_entries() == []
    cache.remove(INFO.cache_name)  # nothing there at all

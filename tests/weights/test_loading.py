"""weights="imagenet"/tag/path: download from a loopback hub, convert, cache; every failure is
a clear error and leaves no cache entry behind."""
import os

import numpy as np
import pytest

import keras_mobile
from keras_mobile.weights import WeightsError, cache, registry

from tests.weights.checkpoints import INFO, SHAPE, build, cache_entries, same_outputs


def test_imagenet_downloads_converts_and_caches(hub, checkpoint, monkeypatch):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    model = build("imagenet")
    assert same_outputs(model, source) == 0.0
    assert cache_entries() == [f"{INFO.cache_name}.json", f"{INFO.cache_name}.safetensors"]
    # second call: one HEAD (is the hub's file still the cached one?), no download, no conversion
    n = len(hub.requests)
    import keras_mobile.weights.loader as loader
    monkeypatch.setattr(loader.convert, "to_keras_layout", lambda *a, **k: pytest.fail("converted again"))
    again = build("imagenet")
    assert hub.requests[n:] == [("HEAD", hub.path(INFO.hf_hub_id))]
    assert same_outputs(again, source) == 0.0
    # hub unreachable (closed port): the cached conversion is served
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert same_outputs(build("imagenet"), source) == 0.0


def test_include_top_false_loads_trunk_from_full_checkpoint(hub, checkpoint):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    trunk = build("imagenet", include_top=False)
    np.testing.assert_array_equal(trunk.get_layer("conv_stem").get_weights()[0],
                                  source.get_layer("conv_stem").get_weights()[0])


def test_named_tag_fetches_that_repo(hub, checkpoint):
    data, _ = checkpoint
    info = registry.resolve("mobilenetv4_conv_small", "e1200_r224_in1k")
    assert info.hf_hub_id == "timm/mobilenetv4_conv_small.e1200_r224_in1k"
    hub.add(info.hf_hub_id, data)
    # a MobileNetV3 file under a MobileNetV4 name: fetched from the tag's repo, then rejected
    with pytest.raises(WeightsError, match="does not match"):
        keras_mobile.MobileNetV4ConvS(weights="e1200_r224_in1k", input_shape=SHAPE)
    assert ("GET", hub.path(info.hf_hub_id)) in hub.requests
    assert cache_entries() == []


def test_404_is_a_clear_error_and_caches_nothing(hub):
    with pytest.raises(WeightsError, match=r"HTTP 404"):
        build("imagenet")
    assert cache_entries() == []


def test_truncated_download_is_rejected(hub, checkpoint):
    data, _ = checkpoint
    hub.add(INFO.hf_hub_id, data)
    hub.truncate[hub.path(INFO.hf_hub_id)] = len(data) // 2
    with pytest.raises(WeightsError):
        build("imagenet")
    assert cache_entries() == []


def test_truncated_file_served_whole_is_rejected(hub, checkpoint):
    """The server is consistent (Content-Length matches) but the file itself is cut short."""
    data, _ = checkpoint
    hub.add(INFO.hf_hub_id, data[: len(data) - 1000])
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        build("imagenet")
    assert cache_entries() == []


def test_offline_mode(hub, checkpoint, monkeypatch):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        build("imagenet")
    assert hub.requests == [] and cache_entries() == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    build("imagenet")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert same_outputs(build("imagenet"), source) == 0.0  # served from the converted cache


def test_corrupt_cache_entry_is_replaced(hub, checkpoint):
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    build("imagenet")
    data_path, _ = cache.paths(INFO.cache_name)
    with open(data_path, "r+b") as f:
        f.seek(os.path.getsize(data_path) // 2)
        f.write(b"\x00" * 64)
    assert same_outputs(build("imagenet"), source) == 0.0
    assert cache.read(INFO.cache_name) is not None


def test_local_safetensors_path(tmp_path, checkpoint):
    data, source = checkpoint
    path = tmp_path / "ckpt.safetensors"
    path.write_bytes(data)
    assert same_outputs(build(str(path)), source) == 0.0


def test_local_truncated_file_names_the_file(tmp_path, checkpoint):
    data, _ = checkpoint
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:5000])
    with pytest.raises(WeightsError, match="cut.safetensors"):
        build(str(path))


def test_pickle_checkpoints_are_refused(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(WeightsError, match="never unpickled"):
        build(str(path))


def test_keras_weights_h5_round_trip(tmp_path, checkpoint):
    _, source = checkpoint
    path = str(tmp_path / "m.weights.h5")
    source.save_weights(path)
    assert same_outputs(build(path), source) == 0.0


def test_unknown_tag_lists_the_known_ones():
    with pytest.raises(ValueError, match="lamb_in1k"):
        build("not_a_tag")


def test_a_build_resolves_the_weights_argument_once(hub, checkpoint, monkeypatch):
    """weights= is parsed into one WeightsSource per build (it was resolved three times: for the
    preprocessing, the class check and the loader)."""
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    calls = []
    real = registry.resolve
    monkeypatch.setattr(registry, "resolve", lambda *a, **k: calls.append(a) or real(*a, **k))
    model = build("imagenet")
    assert len(calls) == 1 and same_outputs(model, source) == 0.0


def test_fine_tuning_resolves_the_weights_argument_once(hub, checkpoint, monkeypatch):
    """build_finetune_model parses weights= once and hands the parsed source to the constructor
    (it handed on the tag, which the constructor resolved a second time)."""
    from keras_mobile import training
    data, source = checkpoint
    hub.add(INFO.hf_hub_id, data)
    calls = []
    real = registry.resolve
    monkeypatch.setattr(registry, "resolve", lambda *a, **k: calls.append(a) or real(*a, **k))
    model = training.build_finetune_model("MobileNetV3Small", 5, weights="imagenet", input_size=SHAPE[0])
    assert len(calls) == 1
    new = {layer.name for layer in training.classifier_layers(model)}
    for layer in model.layers:
        if layer.weights and layer.name not in new:
            for a, b in zip(layer.get_weights(), source.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)


def test_a_source_parsed_for_another_architecture_is_refused():
    from keras_mobile.weights.source import parse
    with pytest.raises(ValueError, match="parsed for mobilenetv4_conv_small, but this model is mobilenetv3_small_100"):
        build(parse("mobilenetv4_conv_small", "imagenet"))

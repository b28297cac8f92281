"""Layer names every Keras backend accepts, mapped to timm module paths by one invertible rule."""
import json
import os
import subprocess
import sys

import keras
import pytest

import keras_mobile
from keras_mobile.layers.naming import SEP, child, to_layer_name, to_timm_path
from keras_mobile.weights.assign import timm_keys
from keras_mobile.weights.registry import _table
from tests.deps import require

CTORS = ["MobileNetV3Small", "MobileNetV3Large", "MobileNetV4ConvS", "MobileNetV4HybridM", "MobileOneS0",
         "EfficientFormerL1"]


def test_rule_round_trips_and_rejects_ambiguous_paths():
    assert to_layer_name("blocks.2.0.dw_mid.conv") == "blocks-2-0-dw_mid-conv"
    assert to_timm_path("blocks-2-0-dw_mid-conv") == "blocks.2.0.dw_mid.conv"
    assert to_timm_path("conv_stem") == "conv_stem"                      # underscores are kept
    assert to_timm_path("blocks.2.0.conv_pw") == "blocks.2.0.conv_pw"    # pre-rename .keras files
    assert child("blocks-1-0", "se.conv_reduce") == "blocks-1-0-se-conv_reduce"
    assert child(None, "pad") is None
    with pytest.raises(ValueError, match="not a timm module path"):
        to_layer_name("blocks.2-0")


@pytest.mark.parametrize("ctor", CTORS)
def test_every_layer_name_is_backend_safe_and_maps_to_its_timm_keys(ctor):
    kw = {"input_shape": (224, 224, 3)}
    m = getattr(keras_mobile, ctor)(weights=None, **kw)
    stack = list(m.layers)
    while stack:
        layer = stack.pop()
        assert "." not in layer.name and "/" not in layer.name, layer.name
        stack.extend(layer._flatten_layers(include_self=False, recursive=False))
    keys = [k for layer in m.layers for _, k in timm_keys(layer)]
    assert len(keys) == len(set(keys)) and all(SEP not in k for k in keys)
    for layer in m.layers:
        for _, key in timm_keys(layer):
            assert key.startswith(to_timm_path(layer.name) + ".")


def test_separator_never_occurs_in_a_timm_key():
    """Every architecture with published checkpoints, built by timm on the meta device."""
    require("torch", "timm")
    code = ("import json, sys, torch, timm\n"
            "out = {}\n"
            "for n in json.loads(sys.argv[1]):\n"
            "    with torch.device('meta'):\n"
            "        out[n] = list(timm.create_model(n, pretrained=False).state_dict())\n"
            "print(json.dumps(out))\n")
    names = sorted(_table())
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_")}
    r = subprocess.run([sys.executable, "-c", code, json.dumps(names)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    keys = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(keys) == set(names) and len(names) >= 15
    for name, ks in keys.items():
        bad = [k for k in ks if SEP in k]
        assert not bad, (name, bad[:3])
        assert all(to_timm_path(to_layer_name(k)) == k for k in ks)


@pytest.mark.parametrize("sep_name", [f"blocks{SEP}0{SEP}conv"])
def test_keras_accepts_the_separator_on_this_backend(sep_name):
    """(JAX / torch: tests/applications/test_backend_parity.py builds whole models there.)"""
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Conv2D(2, 3, name=sep_name)(inp)
    m = keras.Model(inp, out)
    assert m.get_layer(sep_name).kernel.path == f"{sep_name}/kernel"

"""Profile totals vs timm's MAC/param counts for every architecture; roofline arithmetic."""
import json
import os

import keras
import numpy as np
import pytest

import keras_mobile
from keras_mobile.analysis import Hardware, measure_host, plot_ridge_sweep, profile, ridge_sweep, roofline

REF = os.path.join(os.path.dirname(__file__), "timm_macs.json")
CASES = [("MobileNetV3Large", "mobilenetv3_large_100", {}), ("MobileNetV3Small", "mobilenetv3_small_100", {}),
         ("MobileNetV3Small", "tf_mobilenetv3_small_minimal_100", {"minimalistic": True}),
         ("MobileNetV4ConvS", "mobilenetv4_conv_small", {}), ("MobileNetV4ConvM", "mobilenetv4_conv_medium", {}),
         ("MobileNetV4ConvL", "mobilenetv4_conv_large", {}), ("MobileNetV4HybridM", "mobilenetv4_hybrid_medium", {}),
         ("MobileNetV4HybridL", "mobilenetv4_hybrid_large", {}), ("MobileOneS0", "mobileone_s0", {}),
         ("MobileOneS1", "mobileone_s1", {}), ("MobileOneS2", "mobileone_s2", {}), ("MobileOneS3", "mobileone_s3", {}),
         ("MobileOneS4", "mobileone_s4", {}), ("EfficientFormerL1", "efficientformer_l1", {}),
         ("EfficientFormerL3", "efficientformer_l3", {}), ("EfficientFormerL7", "efficientformer_l7", {})]


@pytest.fixture(scope="module")
def reference():
    with open(REF) as f:
        return json.load(f)


@pytest.mark.parametrize("ctor,timm_name,kwargs", CASES, ids=[c[1] for c in CASES])
def test_profile_matches_timm(reference, ctor, timm_name, kwargs):
    ref = reference[timm_name]
    size = ref["input_size"]
    p = profile(getattr(keras_mobile, ctor)(weights=None, input_shape=(size, size, 3), **kwargs))
    assert abs(p.macs / ref["macs"] - 1) <= 0.02
    assert p.params == ref["params"]
    if "macs_reparameterized" in ref and ref["macs_reparameterized"]:
        fused = keras_mobile.reparameterize(getattr(keras_mobile, ctor)(weights=None, input_shape=(size, size, 3)))
        assert abs(profile(fused).macs / ref["macs_reparameterized"] - 1) <= 0.02


def _tiny():
    x = keras.Input((8, 8, 4))
    y = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv")(x)
    y = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw")(y)
    return keras.Model(x, y)


def test_profile_hand_counts():
    p = profile(_tiny(), dtype_bytes=4)
    conv, dw = p.rows
    assert conv.macs == 8 * 8 * 16 * 3 * 3 * 4 and conv.params == 3 * 3 * 4 * 16
    assert dw.macs == 4 * 4 * 16 * 9 and dw.params == 9 * 16
    assert conv.read_bytes == 8 * 8 * 4 * 4 and conv.write_bytes == 8 * 8 * 16 * 4
    assert conv.weight_bytes == 576 * 4


def test_roofline_arithmetic():
    p = profile(_tiny(), dtype_bytes=4)
    conv, dw = p.rows
    hw = Hardware("toy", peak_macs=1e9, bandwidth=1e9, dtype_bytes=4)   # ridge = 1 MAC/byte
    r = roofline(p, hw)
    assert r.layers[0].seconds == pytest.approx(max(conv.macs / 1e9, conv.bytes / 1e9))
    assert r.layers[0].bound == ("compute" if conv.macs >= conv.bytes else "memory")
    assert r.layers[1].bound == "memory"    # depthwise: 2304 MACs vs 5696 bytes
    assert r.seconds == pytest.approx(sum(max(l.macs, l.bytes) / 1e9 for l in p.rows))
    int8 = roofline(p, Hardware("toy8", 1e9, 1e9, dtype_bytes=1))
    assert int8.layers[1].bytes == dw.bytes // 4


def test_ridge_sweep_orders_models_and_plots(tmp_path):
    small = keras_mobile.MobileNetV3Small(weights=None, input_shape=(96, 96, 3))
    big = keras_mobile.MobileNetV4ConvM(weights=None, input_shape=(96, 96, 3))
    ridges, res = ridge_sweep([small, big], ridges=[1, 50, 500])
    for secs in res.values():
        assert secs[0] <= secs[1] <= secs[2]             # less bandwidth never helps
    assert res[big.name][0] > res[small.name][0]
    png = plot_ridge_sweep(ridges, res, str(tmp_path / "r.png"))
    assert os.path.getsize(png) > 5000


def test_measure_host_is_plausible():
    hw = measure_host(seconds=0.1)
    assert 1e8 < hw.peak_macs < 1e13 and 1e8 < hw.bandwidth < 1e12

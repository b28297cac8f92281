"""Building blocks: numerics against numpy references, structure of the UIB variants,
training-only behaviour, serialisation."""
import keras
import numpy as np
import pytest

from keras_mobile import layers as L


def _softmax(a):
    a = a - a.max(-1, keepdims=True)
    e = np.exp(a)
    return e / e.sum(-1, keepdims=True)


def reference_attention(q, k, v, heads, kd, vd, kv_heads):
    """Per-head attention in plain numpy, timm's channel layout (channel = head * dim + d)."""
    b, h, w, _ = q.shape
    q = q.reshape(b, h * w, heads, kd)
    k = k.reshape(b, -1, kv_heads, kd)
    v = v.reshape(b, -1, kv_heads, vd)
    out = np.zeros((b, h * w, heads, vd), np.float32)
    for i in range(heads):
        j = 0 if kv_heads == 1 else i
        a = _softmax(q[:, :, i] @ k[:, :, j].transpose(0, 2, 1) * kd ** -0.5)
        out[:, :, i] = a @ v[:, :, j]
    return out.reshape(b, h, w, heads * vd)


@pytest.mark.parametrize("kv_heads", [1, 4])
def test_attention_core_matches_reference(kv_heads):
    rng = np.random.default_rng(0)
    heads, kd, vd = 4, 8, 6
    q = rng.normal(size=(2, 6, 5, heads * kd)).astype("float32")
    k = rng.normal(size=(2, 3, 3, kv_heads * kd)).astype("float32")
    v = rng.normal(size=(2, 3, 3, kv_heads * vd)).astype("float32")
    core = L.MultiQueryAttentionCore(heads, kd, vd, kv_heads)
    np.testing.assert_allclose(np.asarray(core([q, k, v])),
                               reference_attention(q, k, v, heads, kd, vd, kv_heads), atol=1e-5)


def test_attention_core_rejects_grouped_heads():
    with pytest.raises(ValueError, match="kv_heads"):
        L.MultiQueryAttentionCore(4, 8, 8, kv_heads=2)


def _uib_layers(start, mid, strides=1):
    x = keras.Input((16, 16, 24))
    y = L.universal_inverted_bottleneck(x, 24, 96, start_kernel=start, mid_kernel=mid, strides=strides,
                                        name="b")
    m = keras.Model(x, y)
    dws = [l for l in m.layers if isinstance(l, keras.layers.DepthwiseConv2D)]
    return m, dws


@pytest.mark.parametrize("start,mid,n_dw,residual", [(0, 3, 1, True), (3, 0, 1, True),
                                                     (3, 5, 2, True), (0, 0, 0, True)])
def test_uib_variants(start, mid, n_dw, residual):
    """IB, ConvNext-like, ExtraDW, FFN: the right depthwise convs, kernel sizes, and a residual."""
    m, dws = _uib_layers(start, mid)
    assert len(dws) == n_dw
    assert [d.kernel_size[0] for d in dws] == [k for k in (start, mid) if k]
    assert any(isinstance(l, keras.layers.Add) for l in m.layers) == residual


def test_uib_stride_goes_on_mid_dw_else_start():
    m, dws = _uib_layers(3, 5, strides=2)
    assert [d.strides[0] for d in dws] == [1, 2]
    m, dws = _uib_layers(3, 0, strides=2)
    assert [d.strides[0] for d in dws] == [2]
    assert m.output.shape[1] == 8 and not any(isinstance(l, keras.layers.Add) for l in m.layers)
    with pytest.raises(ValueError, match="strided UIB"):
        _uib_layers(0, 0, strides=2)


def test_torch_padding_is_symmetric_for_strided_convs():
    """A 3x3/s2 conv on an 8x8 map: timm pads 1 on every side, so output pixel (0,0) sees
    input rows/cols -1..1. With an all-ones kernel on an all-ones input that corner sums 4
    (2x2 valid taps); Keras 'same' would see rows 0..2 and sum 9."""
    x = keras.Input((8, 8, 1))
    y = L.conv2d(x, 1, 3, strides=2, padding="torch", name="c")
    m = keras.Model(x, y)
    m.get_layer("c").set_weights([np.ones((3, 3, 1, 1), "float32")])
    out = np.asarray(m(np.ones((1, 8, 8, 1), "float32")))[0, :, :, 0]
    assert out[0, 0] == 4 and out[1, 1] == 9 and out.shape == (4, 4)


def test_stochastic_depth_train_vs_inference():
    sd = L.StochasticDepth(0.5, seed=1)
    x = np.ones((2000, 4), "float32")
    np.testing.assert_array_equal(np.asarray(sd(x, training=False)), x)
    y = np.asarray(sd(x, training=True))
    kept = y[:, 0] > 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(y[kept], 2.0)              # survivors rescaled by 1/keep
    assert (y == y[:, :1]).all()                          # one decision per sample


def test_layer_scale_and_config_round_trip():
    ls = L.LayerScale(0.3)
    x = np.ones((1, 2, 2, 5), "float32")
    np.testing.assert_allclose(np.asarray(ls(x)), 0.3)
    clone = L.LayerScale.from_config(ls.get_config())
    assert clone.init_value == 0.3
    core = L.MultiQueryAttentionCore.from_config(L.MultiQueryAttentionCore(4, 8, 6, 4).get_config())
    assert (core.num_heads, core.key_dim, core.value_dim, core.kv_heads) == (4, 8, 6, 4)


def test_squeeze_excite_gates_channels():
    x = keras.Input((4, 4, 8))
    m = keras.Model(x, L.squeeze_excite(x, 4, gate="hard_sigmoid", name="se"))
    for name in ("se-conv_reduce", "se-conv_expand"):
        layer = m.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    # zero weights -> gate = hard_sigmoid(0) = 0.5 everywhere
    np.testing.assert_allclose(np.asarray(m(np.ones((1, 4, 4, 8), "float32"))), 0.5)

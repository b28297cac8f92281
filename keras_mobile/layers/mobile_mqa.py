"""Mobile Multi-Query Attention (MobileNetV4) and a plain multi-head option for ablation.

MQA shares one key/value head across all query heads, so the query heads can be folded into
the sequence axis: q [B, HW*heads, d] @ k^T [B, d, HW'] is a single batched matmul with no
transposes (cheap on mobile accelerators). K and V can be spatially reduced by a strided
depthwise conv + BN (`kv_stride=2`), as in the paper. With `kv_heads == num_heads` the block is
standard MHSA (separate K/V per head) for the ablation benchmark.

Sub-layer names follow timm `MobileAttention` / `MultiQueryAttention2d`.
"""
import keras
from keras import ops

from keras_mobile.layers.conv_bn_act import batch_norm, conv2d
from keras_mobile.layers.layer_scale import LayerScale
from keras_mobile.layers.stochastic_depth import residual_add
from keras_mobile.layers.naming import child


@keras.saving.register_keras_serializable(package="keras_mobile")
class MultiQueryAttentionCore(keras.layers.Layer):
    """softmax(q k^T * key_dim^-0.5) v on channels-last maps; no weights.

    Inputs: q [B, H, W, heads*key_dim], k [B, h, w, kv_heads*key_dim], v [B, h, w, kv_heads*value_dim].
    Output: [B, H, W, heads*value_dim], channel = head * value_dim + d (timm's layout).
    """

    def __init__(self, num_heads, key_dim, value_dim, kv_heads=1, **kwargs):
        super().__init__(**kwargs)
        if kv_heads not in (1, num_heads):
            raise ValueError(f"kv_heads must be 1 (MQA) or num_heads (MHSA), got {kv_heads}")
        self.num_heads, self.key_dim, self.value_dim, self.kv_heads = num_heads, key_dim, value_dim, kv_heads
        self.scale = key_dim ** -0.5

    def call(self, inputs):
        q, k, v = inputs
        h, w = q.shape[1], q.shape[2]
        if h is None or w is None:
            h, w = ops.shape(q)[1], ops.shape(q)[2]
        hk, wk = k.shape[1], k.shape[2]
        if hk is None or wk is None:
            hk, wk = ops.shape(k)[1], ops.shape(k)[2]
        heads, kd, vd = self.num_heads, self.key_dim, self.value_dim
        q = q * ops.cast(self.scale, q.dtype)
        if self.kv_heads == 1:
            q = ops.reshape(q, (-1, h * w * heads, kd))
            k = ops.reshape(k, (-1, hk * wk, kd))
            v = ops.reshape(v, (-1, hk * wk, vd))
            attn = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 1))), axis=-1)
            o = ops.matmul(attn, v)
        else:
            q = ops.transpose(ops.reshape(q, (-1, h * w, heads, kd)), (0, 2, 1, 3))
            k = ops.transpose(ops.reshape(k, (-1, hk * wk, heads, kd)), (0, 2, 3, 1))
            v = ops.transpose(ops.reshape(v, (-1, hk * wk, heads, vd)), (0, 2, 1, 3))
            attn = ops.softmax(ops.matmul(q, k), axis=-1)
            o = ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3))
        return ops.reshape(o, (-1, h, w, heads * vd))

    def compute_output_shape(self, input_shapes):
        q = input_shapes[0]
        return (q[0], q[1], q[2], self.num_heads * self.value_dim)

    def macs(self, input_shapes):
        """Multiply-adds of q @ k^T and attn @ v: heads * HW * HW' * (key_dim + value_dim)."""
        (_, h, w, _), (_, hk, wk, _) = input_shapes[0], input_shapes[1]
        return self.num_heads * h * w * hk * wk * (self.key_dim + self.value_dim)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "kv_heads": self.kv_heads}


def mobile_attention(x, out_channels, num_heads=8, key_dim=64, value_dim=64, kv_stride=1,
                     dw_kernel=3, kv_heads=1, layer_scale=None, noskip=False, bn_eps=1e-5,
                     padding="torch", drop_path_rate=0.0, name="block"):
    """BN -> Mobile MQA (or MHSA with kv_heads=num_heads) -> 1x1 out proj -> LayerScale (+ skip)."""
    shortcut = x
    in_channels = x.shape[-1]
    x = batch_norm(x, bn_eps, child(name, "norm"))
    a = child(name, "attn")
    q = conv2d(x, num_heads * key_dim, 1, name=child(a, "query.proj"))

    def kv(branch, dim):
        t = x
        if kv_stride > 1:
            t = conv2d(t, in_channels, dw_kernel, kv_stride, depthwise=True, padding=padding,
                       name=child(a, f"{branch}.down_conv"))
            t = batch_norm(t, bn_eps, child(a, f"{branch}.norm"))
        return conv2d(t, kv_heads * dim, 1, name=child(a, f"{branch}.proj"))

    k, v = kv("key", key_dim), kv("value", value_dim)
    o = MultiQueryAttentionCore(num_heads, key_dim, value_dim, kv_heads, name=child(a, "core"))([q, k, v])
    x = conv2d(o, out_channels, 1, name=child(a, "output.proj"))
    if layer_scale is not None:
        x = LayerScale(layer_scale, name=child(name, "layer_scale"))(x)
    if in_channels == out_channels and not noskip:
        x = residual_add(x, shortcut, drop_path_rate, name)
    return x

"""EfficientFormer's multi-head self-attention with a learned relative-position bias.

One bias per head and per |dy|, |dx| offset on the resolution x resolution token grid
(timm `Attention.attention_biases` [heads, R*R], gathered by |dy| * R + |dx|). qkv is one Linear
whose output is split per head as [q key_dim | k key_dim | v val_dim] (head-major).
"""
import keras
import numpy as np
from keras import ops


def relative_bias_index(resolution):
    ys, xs = np.meshgrid(np.arange(resolution), np.arange(resolution), indexing="ij")
    pos = np.stack([ys.ravel(), xs.ravel()])
    rel = np.abs(pos[:, :, None] - pos[:, None, :])
    return (rel[0] * resolution + rel[1]).astype("int32")


@keras.saving.register_keras_serializable(package="keras_mobile")
class AttentionWithBias(keras.layers.Layer):
    def __init__(self, num_heads=8, key_dim=32, attn_ratio=4, resolution=7, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.attn_ratio, self.resolution = num_heads, key_dim, attn_ratio, resolution
        self.val_dim = int(attn_ratio * key_dim)
        self.scale = key_dim ** -0.5

    def build(self, input_shape):
        dim = input_shape[-1]
        n = input_shape[1]
        if n is not None and n != self.resolution ** 2:
            raise ValueError(f"{self.name}: attention biases are learned for a {self.resolution}x"
                             f"{self.resolution} grid ({self.resolution ** 2} tokens), got {n} tokens")
        h = self.num_heads
        self.qkv = keras.layers.Dense(h * (2 * self.key_dim + self.val_dim), name="qkv")
        self.proj = keras.layers.Dense(dim, name="proj")
        self.qkv.build(input_shape)
        self.proj.build((None, n, h * self.val_dim))
        self.attention_biases = self.add_weight(name="attention_biases",
                                                shape=(h, self.resolution ** 2), initializer="zeros")
        self.bias_index = relative_bias_index(self.resolution)

    def call(self, x):
        n = x.shape[1]
        h, kd, vd = self.num_heads, self.key_dim, self.val_dim
        qkv = ops.transpose(ops.reshape(self.qkv(x), (-1, n, h, 2 * kd + vd)), (0, 2, 1, 3))
        q, k, v = qkv[..., :kd], qkv[..., kd:2 * kd], qkv[..., 2 * kd:]
        attn = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * ops.cast(self.scale, x.dtype)
        bias = ops.take(ops.cast(self.attention_biases, x.dtype), self.bias_index, axis=1)  # [h, n, n]
        attn = ops.softmax(attn + bias[None], axis=-1)
        out = ops.reshape(ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3)), (-1, n, h * vd))
        return self.proj(out)

    def timm_keys(self):
        """[(variable, timm key relative to this layer's module path)]."""
        return [(self.qkv.kernel, "qkv.weight"), (self.qkv.bias, "qkv.bias"),
                (self.proj.kernel, "proj.weight"), (self.proj.bias, "proj.bias"),
                (self.attention_biases, "attention_biases")]

    def macs(self, input_shape):
        n, dim = input_shape[1], input_shape[-1]
        h = self.num_heads
        return (n * dim * h * (2 * self.key_dim + self.val_dim) + h * n * n * (self.key_dim + self.val_dim)
                + n * h * self.val_dim * dim)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "attn_ratio": self.attn_ratio, "resolution": self.resolution}

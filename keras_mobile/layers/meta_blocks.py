"""EfficientFormer MetaBlocks.

Meta4D (on feature maps): x + ls1(avgpool3x3(x) - x); x + ls2(BN(1x1(GELU(BN(1x1(x)))))).
Meta3D (on tokens):       x + ls1(MHSA(LN(x)));      x + ls2(Linear(GELU(Linear(LN(x))))).
timm's AvgPool2d(count_include_pad=False) equals Keras AveragePooling2D(padding="same").
"""
import keras

from keras_mobile.layers.activations import apply_activation
from keras_mobile.layers.attention_bias import AttentionWithBias
from keras_mobile.layers.layer_scale import LayerScale
from keras_mobile.layers.stochastic_depth import residual_add
from keras_mobile.layers.naming import child


def meta_block_4d(x, mlp_ratio=4.0, layer_scale=1e-5, bn_eps=1e-5, drop_path_rate=0.0, name="block",
                  hidden=None):
    """hidden: exact MLP width (default int(dim * mlp_ratio))."""
    dim = x.shape[-1]
    pooled = keras.layers.AveragePooling2D(3, 1, padding="same", name=child(name, "token_mixer.pool"))(x)
    mixed = keras.layers.Subtract(name=child(name, "token_mixer"))([pooled, x])
    x = residual_add(LayerScale(layer_scale, name=child(name, "ls1"))(mixed), x, drop_path_rate,
                     child(name, "res1"))
    h = keras.layers.Conv2D(hidden or int(dim * mlp_ratio), 1, name=child(name, "mlp.fc1"))(x)
    h = keras.layers.BatchNormalization(epsilon=bn_eps, momentum=0.9, name=child(name, "mlp.norm1"))(h)
    h = apply_activation(h, "gelu", child(name, "mlp.act"))
    h = keras.layers.Conv2D(dim, 1, name=child(name, "mlp.fc2"))(h)
    h = keras.layers.BatchNormalization(epsilon=bn_eps, momentum=0.9, name=child(name, "mlp.norm2"))(h)
    return residual_add(LayerScale(layer_scale, name=child(name, "ls2"))(h), x, drop_path_rate,
                        child(name, "res2"))


def meta_block_3d(x, mlp_ratio=4.0, layer_scale=1e-5, ln_eps=1e-5, num_heads=8, key_dim=32,
                  resolution=7, drop_path_rate=0.0, name="block", hidden=None):
    """hidden: exact MLP width (default int(dim * mlp_ratio))."""
    dim = x.shape[-1]
    h = keras.layers.LayerNormalization(epsilon=ln_eps, name=child(name, "norm1"))(x)
    h = AttentionWithBias(num_heads, key_dim, 4, resolution, name=child(name, "token_mixer"))(h)
    x = residual_add(LayerScale(layer_scale, name=child(name, "ls1"))(h), x, drop_path_rate,
                     child(name, "res1"))
    h = keras.layers.LayerNormalization(epsilon=ln_eps, name=child(name, "norm2"))(x)
    h = keras.layers.Dense(hidden or int(dim * mlp_ratio), name=child(name, "mlp.fc1"))(h)
    h = apply_activation(h, "gelu", child(name, "mlp.act"))
    h = keras.layers.Dense(dim, name=child(name, "mlp.fc2"))(h)
    return residual_add(LayerScale(layer_scale, name=child(name, "ls2"))(h), x, drop_path_rate,
                        child(name, "res2"))

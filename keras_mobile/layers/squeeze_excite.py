"""Squeeze-and-Excitation (timm `SqueezeExcite` / `SEModule` layout: conv_reduce -> act -> conv_expand -> gate)."""
import keras

from keras_mobile.layers.activations import apply_activation
from keras_mobile.layers.naming import child


def squeeze_excite(x, rd_channels, act="relu", gate="hard_sigmoid", name="se",
                   reduce_name="conv_reduce", expand_name="conv_expand"):
    channels = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=child(name, "pool"))(x)
    s = keras.layers.Conv2D(rd_channels, 1, use_bias=True, name=child(name, reduce_name))(s)
    s = apply_activation(s, act, child(name, "act"))
    s = keras.layers.Conv2D(channels, 1, use_bias=True, name=child(name, expand_name))(s)
    s = apply_activation(s, gate, child(name, "gate"))
    return keras.layers.Multiply(name=child(name, "scale"))([x, s])

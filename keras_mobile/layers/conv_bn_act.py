"""Convolution + BatchNorm + activation, with PyTorch-style symmetric padding.

timm pads every conv by ((k - 1) // 2) * dilation on all sides. Keras "same" pads stride-2
convs asymmetrically (0 top/left, 1 bottom/right), which shifts the sampling grid and breaks
parity with timm weights, so strided convs get an explicit ZeroPadding2D + "valid".
TF-ported checkpoints (`tf_*` in timm) were trained with TF "same", so `padding="same"`
keeps that behaviour.
"""
import keras

from keras_mobile.layers.activations import apply_activation
from keras_mobile.layers.naming import child


def conv2d(x, filters, kernel_size, strides=1, dilation=1, depthwise=False, use_bias=False,
           padding="torch", name=None):
    """A Conv2D/DepthwiseConv2D whose padding matches timm ("torch") or TF ("same")."""
    pad = ((kernel_size - 1) // 2) * dilation
    if padding == "torch" and strides > 1 and pad > 0:
        x = keras.layers.ZeroPadding2D(pad, name=child(name, "pad"))(x)
        conv_padding = "valid"
    elif padding in ("torch", "same"):
        conv_padding = "same"
    else:
        raise ValueError(f"padding must be 'torch' or 'same', got {padding!r}")
    if depthwise:
        layer = keras.layers.DepthwiseConv2D(
            kernel_size, strides=strides, padding=conv_padding, dilation_rate=dilation,
            use_bias=use_bias, name=name)
    else:
        layer = keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=conv_padding, dilation_rate=dilation,
            use_bias=use_bias, name=name)
    return layer(x)


def batch_norm(x, eps=1e-5, name=None):
    return keras.layers.BatchNormalization(epsilon=eps, momentum=0.9, name=name)(x)


def conv_bn_act(x, filters, kernel_size, strides=1, dilation=1, depthwise=False, act="relu",
                norm=True, use_bias=False, bn_eps=1e-5, padding="torch",
                conv_name=None, bn_name=None, act_name=None):
    """conv -> BN -> act. Layer names are explicit: timm module paths in `naming` form."""
    x = conv2d(x, filters, kernel_size, strides, dilation, depthwise, use_bias, padding, conv_name)
    if norm:
        x = batch_norm(x, bn_eps, bn_name)
    return apply_activation(x, act, act_name)

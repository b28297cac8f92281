"""Per-channel input scaling (`Rescaling` / `Normalization`) as a 1x1 depthwise convolution.

keras_mobile models normalise raw [0, 255] pixels inside the graph with a per-channel
`Rescaling` (scale 1/(255 std), offset -mean/std). The converter writes it as MUL and ADD by
[3]-vectors broadcast over the image. XNNPACK runs such a binary op as one microkernel call per
pixel (rows of 3 values), so those two ops cost as much as a third of a small int8 model: the
default int8 file of MobileNetV3Small at 224 px went from 1.04x to 0.67x the fp32 time with the
scaling as one DEPTHWISE_CONV_2D (the form `quantize_model` exports; benchmarks/int8_ptq_forms.py).
A 1x1 depthwise conv with a bias is the same function, and in int8 it also rounds once instead
of twice: each channel's single weight quantizes exactly with a per-channel scale, the offset
goes into the int32 bias.
"""
import keras
import numpy as np
from keras import ops


def per_channel_affine(layer, channels):
    """(scale, offset) float32 arrays of length `channels` of a `Rescaling` or (non-inverted,
    last-axis) `Normalization` layer, or None when the layer is neither or not per-channel."""
    L = keras.layers
    if isinstance(layer, L.Rescaling):      # scale/offset: a scalar, a [C] vector or e.g. (1, 1, 1, C)
        values = [np.reshape(np.asarray(v, "float32"), (-1,)) for v in (layer.scale, layer.offset)]
        if any(v.size not in (1, channels) for v in values):
            return None                     # not per channel (e.g. per pixel): left to the converter
        return tuple(np.broadcast_to(v, (channels,)).copy() for v in values)
    if not isinstance(layer, L.Normalization) or getattr(layer, "invert", False) \
            or layer.axis not in ((-1,), (3,), -1, 3):
        return None
    mean = np.broadcast_to(np.reshape(np.asarray(layer.mean, "float32"), (-1,)), (channels,))
    std = np.sqrt(np.maximum(np.broadcast_to(np.reshape(np.asarray(layer.variance, "float32"), (-1,)),
                                             (channels,)), keras.backend.epsilon()))
    return 1.0 / std, -mean / std


def broadcast_affine(layer):
    """True for a `Rescaling` with a per-channel (vector) scale or offset, or a `Normalization`, on 4D
    channels-last tensors: the case the converter writes as broadcast MUL/ADD by a vector (even
    when its entries are equal; a scalar Rescaling(1/255) is a MUL by a scalar, which XNNPACK runs
    at full speed)."""
    shapes = [tuple(t.shape) for t in _inputs(layer)]
    if not shapes or any(len(s) != 4 or s[-1] is None for s in shapes) \
            or per_channel_affine(layer, shapes[0][-1]) is None:
        return False
    return not isinstance(layer, keras.layers.Rescaling) or np.size(layer.scale) > 1 or np.size(layer.offset) > 1


def _inputs(layer):
    try:
        inputs = layer.input
    except (AttributeError, ValueError):      # not called yet, or called on several inputs
        return []
    return inputs if isinstance(inputs, (list, tuple)) else [inputs]


class AffineAsDepthwise(keras.layers.Layer):
    """A built `Rescaling` / `Normalization` (per-channel, channels-last) as x * w + b through a
    1x1 depthwise convolution: the same function, one DEPTHWISE_CONV_2D in the .tflite. Used for
    export only (not serialized)."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.source = source

    def build(self, input_shape):
        pass   # constants come from the source layer at each call

    def call(self, x):
        channels = int(x.shape[-1])
        scale, offset = per_channel_affine(self.source, channels)
        kernel = scale.reshape(1, 1, channels, 1)
        y = ops.depthwise_conv(ops.cast(x, self.compute_dtype), kernel.astype(self.compute_dtype),
                               strides=1, padding="valid")
        return y + offset.astype(self.compute_dtype)

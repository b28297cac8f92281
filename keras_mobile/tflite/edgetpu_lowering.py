"""EdgeTPU-friendly rewrites of a Keras graph, used by `export(..., target="edgetpu")`.

The Edge TPU compiler maps a graph up to its first unsupported op and runs the rest on the
CPU. TFLite's HARD_SWISH is not in the published EdgeTPU op list, and the converter pattern-
matches x * relu6(x + 3) / 6 (and x * (relu6(x + 3) / 6)) back into HARD_SWISH. Written as
relu6(x + 3) * (x / 6) it lowers to MUL, ADD (fused RELU6) and MUL, which the Edge TPU runs:
the same function, so outputs are unchanged up to float rounding.

GELU (EfficientFormer) has no Edge TPU kernel either; it becomes x * sigmoid(1.702 x) (MUL,
LOGISTIC, MUL), an approximation within 0.021 of the erf GELU everywhere: below one int8 step
of a typical GELU input range, but not exact, so it is listed in the change notes.

LayerNormalization as Keras lowers it leaves a float NEG (with DEQUANTIZE/QUANTIZE around it)
in an int8 graph: a float island where the Edge TPU mapping ends. Written out as
(x - mean) * rsqrt(var + eps) * gamma + beta it is all int8 (MEAN, SUB, MUL, ADD, RSQRT), the
same function.

AveragePooling2D (EfficientFormer's pool token mixer) has an int8 AVERAGE_POOL_2D that XNNPACK
does not delegate; the default int8 export writes it as a depthwise convolution with weights
1/(k*k) times a constant border map (exact in float; in int8 the 1/(k*k) weights and the map are quantized, `AveragePoolAsDepthwise`). The Edge TPU runs
AVERAGE_POOL_2D itself, so its export keeps the op.

A per-channel input scaling (keras_mobile's 'preprocessing' Rescaling of raw pixels) becomes a 1x1
depthwise conv in the default int8 export (`affine_as_depthwise`: XNNPACK runs the converter's
MUL/ADD by a 3-vector one pixel at a time).
"""
from collections import Counter

import keras
import numpy as np
from keras import ops

from keras_mobile import graph
from keras_mobile.graph import activation_name as _activation_name
from keras_mobile.tflite.affine_as_depthwise import AffineAsDepthwise, broadcast_affine

HARD_SWISH_NAMES = ("hard_silu", "hard_swish")
GELU_NAMES = ("gelu", "_gelu_exact")


@keras.saving.register_keras_serializable(package="keras_mobile")
def hard_swish_edgetpu(x):
    """x * relu6(x + 3) / 6 in an order the TFLite converter does not fuse into HARD_SWISH.

    The gate is the first operand on purpose: written (x / 6) * relu6(x + 3), the int8 quantizer
    gave the x / 6 tensor the range of the product (max ~6x too wide: 2 bits lost at every
    hard-swish), and a trained MobileNetV3Small's int8 top-1 agreement with Keras fell from 97.3 %
    (HARD_SWISH op) to 95.7 %; in this order it is 97.5 % (3,000 hard_digits test images)."""
    return ops.relu6(x + 3.0) * (x * (1.0 / 6.0))


@keras.saving.register_keras_serializable(package="keras_mobile")
def gelu_edgetpu(x):
    """Sigmoid approximation of GELU, x * sigmoid(1.702 x): ops the Edge TPU runs."""
    return x * ops.sigmoid(1.702 * x)


class ExplicitLayerNorm(keras.layers.Layer):
    """Wraps a built LayerNormalization (sharing its gamma/beta) with the formula written out in
    ops that quantize to int8. Used for export only (not serialized)."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.source = source

    def call(self, x):
        s = self.source
        mean = ops.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        y = centred * ops.rsqrt(ops.mean(centred * centred, axis=-1, keepdims=True) + s.epsilon)
        if s.scale:
            y = y * s.gamma
        return y + s.beta if s.center else y


class AveragePoolAsDepthwise(keras.layers.Layer):
    """A built AveragePooling2D (channels_last) as a depthwise convolution with weights 1/(k*k),
    times a constant map k*k / (window cells inside the image) where a "same" window overlaps
    the border: the same function (Keras, like timm's count_include_pad=False, averages over the
    cells inside the image), with int8 DEPTHWISE_CONV_2D and MUL ops, which XNNPACK delegates
    (its AVERAGE_POOL_2D is float only). Used for export only (not serialized)."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, dtype=source.dtype_policy, **kwargs)
        self.pool, self.strides, self.padding = source.pool_size, source.strides, source.padding

    def build(self, input_shape):
        pass   # constants come from each call's static shape: a reused pool may see several sizes

    def call(self, x):
        (kh, kw), shape = self.pool, tuple(x.shape)
        kernel = np.full((kh, kw, shape[-1], 1), 1.0 / (kh * kw), "float32")
        y = ops.depthwise_conv(x, kernel, strides=self.strides, padding=self.padding)
        if self.padding == "same":
            rows, cols = (_window_cells(n, k, s) for n, k, s in zip(shape[1:3], self.pool, self.strides))
            border = (kh * kw) / np.outer(rows, cols)
            if not np.all(border == 1.0):
                y = y * border[None, :, :, None].astype("float32")
        return y


def _window_cells(size, k, stride):
    """How many of a "same"-padded window's k cells fall inside an axis of `size`, per output."""
    out = -(-size // stride)
    before = max((out - 1) * stride + k - size, 0) // 2
    starts = np.arange(out) * stride - before
    return np.minimum(starts + k, size) - np.maximum(starts, 0)


def _lowerable_pool(layer):
    # the border map of a "same" window needs the static image size (of every call: a layer may be reused)
    if not (isinstance(layer, keras.layers.AveragePooling2D) and layer.data_format == "channels_last"):
        return False
    return layer.padding == "valid" or all(None not in tuple(shape)[1:3] for shape in graph.call_input_shapes(layer))


def _last_axis_layer_norm(layer):
    if not isinstance(layer, keras.layers.LayerNormalization) or getattr(layer, "rms_scaling", False):
        return False
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    rank = len(layer.input.shape) if hasattr(layer, "input") else None
    return len(axes) == 1 and (axes[0] == -1 or (rank is not None and axes[0] == rank - 1))


def _activation_in(names):
    return lambda layer: isinstance(layer, keras.layers.Activation) and _activation_name(layer) in names


def _activation_as(fn):
    return lambda layer: keras.layers.Activation(fn, name=layer.name, dtype=layer.dtype_policy)


# rewrite -> (which leaf layers it takes, what replaces one: a layer sharing its weights, change note for n
# of them); the notes are listed in this order
REWRITES = {
    "layer_norm": (_last_axis_layer_norm, ExplicitLayerNorm,
                   "LayerNorm x{n} -> (x-mean)*rsqrt(var+eps)*gamma+beta (exact; all int8, Keras' lowering leaves "
                   "a float NEG)"),
    "pool": (_lowerable_pool, AveragePoolAsDepthwise,
             "AveragePooling2D x{n} -> depthwise conv 1/(k*k) x border map (exact in float; int8 AVERAGE_POOL_2D is "
             "not delegated to XNNPACK)"),
    "scaling": (broadcast_affine, AffineAsDepthwise,
                "per-channel input scaling x{n} -> 1x1 depthwise conv (exact in float; the MUL/ADD by a channel "
                "vector runs in XNNPACK one pixel at a time)"),
    "hard_swish": (_activation_in(HARD_SWISH_NAMES), _activation_as(hard_swish_edgetpu),
                   "hard-swish x{n} -> relu6(x+3)*(x/6) (MUL, ADD+RELU6, MUL; exact; HARD_SWISH is not an Edge TPU "
                   "op and its int8 kernel is not delegated to XNNPACK)"),
    "gelu": (_activation_in(GELU_NAMES), _activation_as(gelu_edgetpu),
             "GELU x{n} -> x*sigmoid(1.702x) (MUL, LOGISTIC, MUL; approximate, |error| <= 0.021; GELU is not an "
             "Edge TPU op)"),
}
# target -> the rewrites its export makes
TARGETS = {"edgetpu": ("layer_norm", "hard_swish", "gelu"), "xnnpack_int8": ("pool", "scaling", "hard_swish")}


def lowered(model, rewrites):
    """Returns (model, changes): a clone sharing `model`'s weights in which every leaf layer that one
    of `rewrites` (names of `REWRITES`) takes is replaced, and a list of change notes (empty when
    nothing needed rewriting: `model` itself is returned)."""
    unknown = set(rewrites) - set(REWRITES)
    if unknown:
        raise ValueError(f"unknown rewrites {sorted(unknown)}; known: {list(REWRITES)}")
    picked = {}         # id(layer) -> rewrite
    for layer in graph.leaf_layers(model):
        rewrite = next((r for r in rewrites if REWRITES[r][0](layer)), None)
        if rewrite is not None:
            picked[id(layer)] = rewrite
    if not picked:
        return model, []

    def clone(layer):
        rewrite = picked.get(id(layer))
        # other layers are reused: weights stay shared with the original model
        return REWRITES[rewrite][1](layer) if rewrite else layer

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    counts = Counter(picked.values())
    return new, [note.format(n=counts[r]) for r, (_, _, note) in REWRITES.items() if counts[r]]


def edgetpu_friendly(model):
    """`lowered(model, TARGETS["edgetpu"])`, the Edge TPU export's rewrite: ops the Edge TPU lacks are
    rewritten into supported ones (hard-swish -> MUL/ADD+RELU6/MUL, exact; GELU -> x * sigmoid(1.702 x),
    approximate; LayerNorm written out, exact). Returns (model, changes)."""
    return lowered(model, TARGETS["edgetpu"])


def xnnpack_int8_friendly(model):
    """`lowered(model, TARGETS["xnnpack_int8"])`, the default int8 (PTQ) export's rewrite: hard-swish ->
    relu6(x+3)*(x/6), AveragePooling2D -> depthwise conv x border map and per-channel input scaling ->
    1x1 depthwise conv (all exact in float). LiteRT's int8 HARD_SWISH and AVERAGE_POOL_2D kernels are not
    delegated to XNNPACK, so every such op cuts the graph into another delegate partition (or needs a
    float island); MUL, ADD+RELU6 and DEPTHWISE_CONV_2D are delegated in int8. The scaling's broadcast
    MUL/ADD is delegated but slow (`affine_as_depthwise`). Returns (model, changes)."""
    return lowered(model, TARGETS["xnnpack_int8"])

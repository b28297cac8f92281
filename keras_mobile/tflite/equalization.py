"""Int8 PTQ: cross-layer equalization (CLE) of the weights while the file is converted.

Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction" (ICCV
2019), section 4.1. A layer computing y = act(W1 x + b1) whose output reaches exactly one linear
layer W2 through ops that commute with a positive per-channel scale (ReLU, zero padding, max/avg
pooling, identities) computes the same function when output channel i of (W1, b1) is divided by
s_i and input channel i of W2 multiplied by s_i. DFQ picks s_i = sqrt(r1_i / r2_i) (r1_i: the
largest |weight| of the producer's output channel i, r2_i: of the consumer's weights reading
channel i), which equalises both to sqrt(r1_i r2_i), and iterates over all pairs until the
scales settle (a depthwise layer is a consumer of the pair before it and a producer of the pair
after it: the scale passes through its channel).

Why the int8 file needs it although LiteRT quantizes conv weights per output channel: the
consumer's output channel j gets one weight scale for all its input channels, so one huge weight
(a reparameterized MobileOne block's fused identity branch on a near-dead channel: gamma /
sqrt(var + eps) ~ 300) leaves the channel's other weights at ~0 steps; CLE moves that factor into
the producer's channel, where its own per-channel weight scale absorbs it. Dense layers are
quantized per tensor, where CLE evens out all their input channels.

What DFQ's weight-only choice ignores: activations are quantized per tensor, and dividing a channel
by s_i moves it within its tensor's int8 range. On a reparameterized MobileOne the DFQ scales span
four decades along the chain and the stem's output channels end up too unequal for one range
(a trained MobileOneS0, seed 1: the int8 stem output's relative RMSE against float is 0.50, 0.007
with the choice below, each on 40 inputs where its file disagrees with Keras). With calibration
samples (`equalized(model, samples)`), r1_i is instead the channel's peak |value| on them (the
tensor between the two layers; it scales by exactly 1 / s_i, so the iteration needs one pass over
the data), which equalises activation and consumer weight ranges: the choice SmoothQuant (Xiao et
al., 2023) makes with alpha = 0.5.

A producer is a Conv2D / DepthwiseConv2D (depth multiplier 1) / Dense with a ReLU or linear
activation, optionally followed by its BatchNormalization (scaled through gamma and beta, the
folded kernel gives r1), or a layer naming such a conv with `equalization_conv()` (protocol: the
layer computes ReLU(conv(zero-padded x)), e.g. a fused MobileOne block). Every tensor on the way
must have one consumer and not be a model output, and every layer of the pair must be called
once: a residual (Add), a concat, an SE gate or a ReLU6 / hard-swish stops it. In float the model
is unchanged (to rounding); the weights are restored after conversion.
"""
import contextlib

import keras
import numpy as np

from keras_mobile import graph
from keras_mobile.tflite.dead_inputs import assigned, channel_peaks
from keras_mobile.tflite.edgetpu_lowering import AveragePoolAsDepthwise
from keras_mobile.tflite.fake_quant import preserves_scale

L = keras.layers
_POSITIVELY_HOMOGENEOUS = ("relu", "linear")          # f(x / s) = f(x) / s for s > 0
_AVERAGES = (L.AveragePooling2D, L.GlobalAveragePooling2D, AveragePoolAsDepthwise)
_MOVES_CHANNELS = (L.Flatten, L.Reshape, L.Permute)


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _core(layer):
    """The Conv2D / DepthwiseConv2D / Dense whose weights CLE scales for `layer`, or None."""
    if callable(getattr(layer, "equalization_conv", None)):
        return layer.equalization_conv()
    plain = (isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.Dense)) and getattr(layer, "groups", 1) == 1
             and getattr(layer, "depth_multiplier", 1) == 1)
    return layer if plain and _channels_last(layer) else None


def _may_produce(layer, conv):
    """A scale of the conv's output channels reaches the layer's output unchanged: a plain layer's
    activation is ReLU or linear; a protocol layer promises ReLU."""
    return conv is not layer or graph.activation_name(layer) in _POSITIVELY_HOMOGENEOUS + (None,)


def _commutes(layer):
    """True if `layer` commutes with a positive per-channel scale of its (channels-last) input."""
    if isinstance(layer, L.ReLU):
        return layer.max_value is None and float(layer.threshold) == 0.0
    if isinstance(layer, L.Activation):
        return graph.activation_name(layer) in _POSITIVELY_HOMOGENEOUS
    if isinstance(layer, _MOVES_CHANNELS) or not _channels_last(layer):
        return False
    return isinstance(layer, _AVERAGES) or preserves_scale(layer)


class _Unit:
    """One linear layer as CLE sees it: the conv holding kernel (and bias), and the
    BatchNormalization folded into its output when one follows. Scales act on numpy copies."""

    def __init__(self, layer, conv, norm):
        self.layer, self.conv, self.norm = layer, conv, norm
        self.depthwise = isinstance(conv, L.DepthwiseConv2D)
        self.kernel = np.array(keras.ops.convert_to_numpy(conv.kernel), np.float64)
        self.bias = np.array(keras.ops.convert_to_numpy(conv.bias), np.float64) if conv.use_bias else None
        if norm is not None:
            self.gamma = np.array(keras.ops.convert_to_numpy(norm.gamma), np.float64)
            self.beta = np.array(keras.ops.convert_to_numpy(norm.beta), np.float64) if norm.center else None
            self.inv_std = 1.0 / np.sqrt(np.asarray(keras.ops.convert_to_numpy(norm.moving_variance), np.float64)
                                         + norm.epsilon)

    @property
    def out_axis(self):
        return -2 if self.depthwise else -1         # a depthwise kernel is [kh, kw, channels, 1]

    def _along(self, v, axis):
        shape = [1] * self.kernel.ndim
        shape[axis] = -1
        return v.reshape(shape)

    def folded(self):
        """The kernel the converter quantizes (BatchNormalization folded in)."""
        if self.norm is None:
            return self.kernel
        return self.kernel * self._along(self.gamma * self.inv_std, self.out_axis)

    def out_range(self):
        k = np.abs(self.folded())
        return k.max(axis=tuple(a for a in range(k.ndim) if a != k.ndim + self.out_axis))

    def in_range(self):
        k = np.abs(self.folded())
        return k.max(axis=tuple(range(k.ndim - 2)) + (k.ndim - 1,))

    def scale_out(self, s):
        """Output channel i divided by s[i]."""
        if self.norm is not None:
            self.gamma = self.gamma / s
            self.beta = None if self.beta is None else self.beta / s
            return
        self.kernel = self.kernel / self._along(s, self.out_axis)
        if self.bias is not None:
            self.bias = self.bias / s

    def scale_in(self, s):
        """Input channel i multiplied by s[i]."""
        self.kernel = self.kernel * self._along(s, -2)

    def variables(self):
        pairs = [(self.conv.kernel, self.kernel)]
        pairs += [(self.conv.bias, self.bias)] if self.bias is not None else []
        pairs += [(self.norm.gamma, self.gamma)] if self.norm is not None else []
        pairs += [(self.norm.beta, self.beta)] if self.norm is not None and self.beta is not None else []
        return pairs


def equalization_pairs(model):
    """[(producer, consumer, tensor)]: the `_Unit`s of `model` CLE may rescale (see the module
    docstring) and the symbolic tensor the consumer reads."""
    calls = graph.layer_calls(model)
    count = {}
    for layer, _ in calls:
        count[id(layer)] = count.get(id(layer), 0) + 1
    readers = graph.tensor_consumers(model)
    outputs = {id(t) for t in model.outputs}

    def only_reader(t):
        """The one (layer, node) reading tensor t, when t is no model output and the layer is called once."""
        r = readers.get(id(t), [])
        if len(r) != 1 or id(t) in outputs or count[id(r[0][0])] != 1:
            return None
        return r[0]

    units, pairs = {}, []
    for layer, node in calls:
        conv = _core(layer)
        if conv is None or count[id(layer)] != 1:
            continue
        t, norm = node.output_tensors[0], None
        nxt = only_reader(t)
        if (nxt is not None and conv is layer and isinstance(nxt[0], L.BatchNormalization) and nxt[0].scale
                and nxt[0].axis in (-1, len(t.shape) - 1) and graph.activation_name(conv) in ("linear", None)):
            norm, t = nxt[0], nxt[1].output_tensors[0]
        units[id(layer)] = (layer, conv, norm, t)
    for layer, conv, norm, t in list(units.values()):
        if not _may_produce(layer, conv):
            continue
        nxt = only_reader(t)
        while nxt is not None and _commutes(nxt[0]):
            t = nxt[1].output_tensors[0]
            nxt = only_reader(t)
        if nxt is None or id(nxt[0]) not in units or nxt[0] is layer:
            continue
        consumer = units[id(nxt[0])]
        if consumer[1].kernel.shape[-2] != t.shape[-1]:
            continue
        pairs.append((layer, consumer[0], t))
    made = {}

    def unit(layer):
        if id(layer) not in made:
            made[id(layer)] = _Unit(*units[id(layer)][:3])
        return made[id(layer)]

    return [(unit(a), unit(b), t) for a, b, t in pairs]


def equalize(pairs, peaks=None, max_sweeps=100, tolerance=1e-4):
    """DFQ's iteration on `equalization_pairs` (in place, on the units' numpy copies): every sweep
    sets s = sqrt(r1 / r2) per channel of each pair (channels where either range is 0 keep s = 1)
    until no scale moves by more than `tolerance`. `peaks` (per pair, the per-channel max |value|
    of the tensor between producer and consumer on calibration data) replaces r1 by that peak
    (divided by the scale so far: the tensor scales by exactly 1 / s). Returns each pair's total
    scales."""
    total = [np.ones(p.out_range().shape) for p, _, _ in pairs]
    for _ in range(max_sweeps):
        moved = 0.0
        for i, (p, c, _) in enumerate(pairs):
            r1 = p.out_range() if peaks is None else np.asarray(peaks[i], np.float64) / total[i]
            r2 = c.in_range()
            s = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 / np.where(r2 > 0, r2, 1.0)), 1.0)
            p.scale_out(s)
            c.scale_in(s)
            total[i] = total[i] * s
            moved = max(moved, float(np.abs(np.log(s)).max()))
        if moved < tolerance:
            break
    return total


@contextlib.contextmanager
def equalized(model, samples=None):
    """Cross-layer equalization of `model`'s weights inside the block, restored after; yields a
    list of "producer -> consumer" strings (the pairs whose channels were rescaled) for the
    export report. With `samples` (calibration inputs), r1 is the activation peak (`equalize`)."""
    pairs = equalization_pairs(model)
    peaks = None
    if samples is not None and pairs:
        peaks = channel_peaks(model, [t for _, _, t in pairs], samples)
    totals = equalize(pairs, peaks)
    values, changes = {}, []
    for (p, c, _), s in zip(pairs, totals):
        if np.allclose(s, 1.0):
            continue
        changes.append(f"{p.layer.name} -> {c.layer.name} (scales {s.min():.3g}-{s.max():.3g})")
        for u in (p, c):
            for var, value in u.variables():
                values[id(var)] = (var, value)      # a unit in two pairs: its final value once
    with assigned(values.values()):
        yield changes

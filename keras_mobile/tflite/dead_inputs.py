"""Int8 PTQ: weights that read an input channel which is zero on every calibration sample are set
to 0 while the file is converted.

Such a channel (a ReLU that never fires) adds nothing, but its weights can be huge: MobileOne's
identity branch folds a BatchNorm whose running variance is ~0 there into gamma / sqrt(eps), ~300
on the fused kernel's diagonal. The int8 weight scale of an output channel is set by its largest
weight, so that one weight leaves the channel's other weights at ~0 steps and its output is lost
(a trained MobileOneS0: relative error 0.02 -> 0.16 at one conv, benchmarks/int8_agreement.py).
On the calibration data the zeroed weights change nothing.

A depthwise conv reading a dead channel has its own weight scale per channel, but its bias is
quantized with scale input scale x weight scale: MobileOne's fused kernel there (up to ~1,550 in the
trained MobileOneS0s of benchmarks/int8_agreement.py, read off the models, not stored) makes that step 4-5, so a bias of 2.2-3.1 (the
channel's whole, constant output) rounds to 0 or 5.3 (seed 0: 14 steps of the output tensor), and
the ratio input x weight / output scale (1,460 for seed 2) is beyond what LiteRT's XNNPACK delegate
accepts (it refused the file). Zeroed, the channel's output is its bias alone (the converter then picks a tiny weight scale and
rescales that bias; exact on XNNPACK, not checked on other kernels).

The same BatchNorm sits on channels that are constant but not zero (a ReLU that always fires on a
bias, 0.1-3.3 in the trained MobileOneS0s of benchmarks/int8_agreement.py): there the fused weight
(~250-380) cancels a bias of the same size (-1244 for 379 x 3.313), so the int8 rounding of the
input (a step of ~0.16) times the weight swamps the output (seed 0: relative error 1.7 at
stages-0-1, 0.026 folded). A 1x1 conv or dense layer reading such a channel (its spread on every
calibration sample within 1 % of an int8 step of the layer input's range; those channels spread
by less than 1e-4 of a step, while the next-flattest ones of the trained models spread by 4-44 %)
gets value x weights folded into its bias and those weights set to 0 (`constant_inputs_folded`):
exact up to that spread. A wider kernel also sees the zero padding at the border, where the
channel is not constant, so it is left alone.
"""
import contextlib

import keras
import numpy as np

from keras_mobile import graph


def input_kernels(layer):
    """Kernel variables of `layer` whose axis -2 runs over the channels of the layer's input: a
    full Conv2D's, a DepthwiseConv2D's ([kh, kw, channels, multiplier]) or a Dense's, or those a layer
    names with `input_channel_kernels()` (protocol)."""
    if hasattr(layer, "input_channel_kernels"):
        return list(layer.input_channel_kernels())
    if isinstance(layer, keras.layers.DepthwiseConv2D) and _channels_last(layer):
        return [layer.kernel]
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and getattr(layer, "groups", 1) == 1 \
            and _channels_last(layer):
        return [layer.kernel]
    return []


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def channel_ranges(model, tensors, samples, batch_size=32):
    """[(min, max, mean) per channel (last axis)] of each symbolic tensor of `model` over `samples`
    (arrays shaped like the model input, batch first)."""
    def stats(t):
        axes = tuple(range(len(t.shape) - 1))
        return [keras.ops.min(t, axis=axes), keras.ops.max(t, axis=axes), keras.ops.sum(t, axis=axes)]

    probe = keras.Model(model.input, [v for t in tensors for v in stats(t)])      # flat: 3 per tensor
    x = np.concatenate(samples)
    acc = None
    for i in range(0, len(x), batch_size):
        flat = [np.asarray(v, np.float64) for v in probe(x[i:i + batch_size], training=False)]
        out = [flat[j:j + 3] for j in range(0, len(flat), 3)]
        acc = out if acc is None else [[np.minimum(a[0], b[0]), np.maximum(a[1], b[1]), a[2] + b[2]]
                                       for a, b in zip(acc, out)]
    counts = [len(x) * int(np.prod(t.shape[1:-1])) for t in tensors]
    return [(lo, hi, total / n) for (lo, hi, total), n in zip(acc, counts)]


def channel_peaks(model, tensors, samples, batch_size=32):
    """[max |value| per channel (last axis)] of each symbolic tensor of `model` over `samples`."""
    return [np.maximum(-lo, hi) for lo, hi, _ in channel_ranges(model, tensors, samples, batch_size)]


def _input_calls(model):
    return [(layer, node) for layer, node in graph.layer_calls(model) if input_kernels(layer)]


def dead_input_channels(model, samples, batch_size=32):
    """[(layer, channel indices)] of every layer with `input_kernels` whose input channels are
    exactly zero on all `samples` (arrays shaped like the model input, batch first)."""
    calls = _input_calls(model)
    if not calls:
        return []
    peak = channel_peaks(model, [node.input_tensors[0] for _, node in calls], samples, batch_size)
    dead = {}
    for (layer, _), p in zip(calls, peak):       # a layer called twice: dead in every call
        zero = set(np.flatnonzero(p == 0).tolist())
        dead[id(layer)] = (layer, zero if id(layer) not in dead else dead[id(layer)][1] & zero)
    return [(layer, sorted(zero)) for layer, zero in dead.values() if zero]


def _pointwise_conv(layer):
    """The Conv2D / Dense holding `layer`'s 1x1 kernel and bias (itself, or what a layer names with
    `equalization_conv()`), or None: only there a constant input folds into the bias everywhere
    (a wider kernel sees the zero padding at the border)."""
    conv = layer.equalization_conv() if callable(getattr(layer, "equalization_conv", None)) else layer
    if not isinstance(conv, (keras.layers.Conv2D, keras.layers.Dense)) or not conv.use_bias:
        return None
    if isinstance(conv, keras.layers.DepthwiseConv2D) or getattr(conv, "groups", 1) != 1:
        return None
    return conv if all(d == 1 for d in conv.kernel.shape[:-2]) else None


MIN_DISTINCT_SAMPLES = 8   # below this a pooled channel (one value per sample) looks constant by chance


def distinct_samples(samples):
    """The number of different samples (byte-wise) in `samples` (arrays, batch first)."""
    return len({np.ascontiguousarray(s).tobytes() for batch in samples for s in np.asarray(batch)})


def constant_input_channels(model, samples, batch_size=32):
    """[(layer, conv, channel indices, values)]: input channels of a 1x1 conv or dense layer with a bias
    (`_pointwise_conv`, called once) that hold one nonzero value on every sample, up to 1 % of an
    int8 step of the layer input's range (a variation int8 cannot represent). Nothing with fewer
    than MIN_DISTINCT_SAMPLES different samples (after a global pool each gives one value per
    channel: one or a few repeated samples would make every channel "constant" and the int8 file
    ignore its input), and never every input channel of a layer."""
    calls = [(layer, node) for layer, node in _input_calls(model) if _pointwise_conv(layer) is not None]
    once = [c for c in calls if sum(c[0] is other for other, _ in calls) == 1]
    if not once or distinct_samples(samples) < MIN_DISTINCT_SAMPLES:
        return []
    ranges = channel_ranges(model, [node.input_tensors[0] for _, node in once], samples, batch_size)
    found = []
    for (layer, _), (lo, hi, mean) in zip(once, ranges):
        step = (max(hi.max(), 0) - min(lo.min(), 0)) / 255
        channels = np.flatnonzero((hi - lo <= step / 100) & (mean != 0))
        if 0 < len(channels) < len(hi):
            found.append((layer, _pointwise_conv(layer), channels.tolist(), mean[channels]))
    return found


@contextlib.contextmanager
def assigned(values):
    """Assigns each (variable, new value) of `values` inside the block and the old values back
    after it, also when the block raises (the export's temporary weight changes)."""
    saved = []
    try:
        for var, value in values:
            old = keras.ops.convert_to_numpy(var)
            saved.append((var, old))
            var.assign(np.asarray(value).astype(old.dtype))
        yield
    finally:
        for var, old in reversed(saved):
            var.assign(old)


@contextlib.contextmanager
def dead_inputs_zeroed(model, samples):
    """Zeroes the weights reading `dead_input_channels` inside the block and restores them after;
    yields a list of "layer: channels" strings for the export report."""
    values, changes = [], []
    for layer, channels in dead_input_channels(model, samples):
        for kernel in input_kernels(layer):
            w = keras.ops.convert_to_numpy(kernel)
            if not np.any(w[..., channels, :]):
                continue
            zeroed = w.copy()
            zeroed[..., channels, :] = 0
            values.append((kernel, zeroed))
            changes.append(f"{layer.name}: {len(channels)} of {w.shape[-2]}")
    with assigned(values):
        yield changes


@contextlib.contextmanager
def constant_inputs_folded(model, samples):
    """Folds `constant_input_channels` into the bias (bias += value x weights; weights 0) inside the
    block and restores them after; yields "layer: channels" strings for the export report."""
    values, changes = [], []
    for layer, conv, channels, means in constant_input_channels(model, samples):
        k, b = (keras.ops.convert_to_numpy(v) for v in (conv.kernel, conv.bias))
        rows = k.reshape(-1, k.shape[-2], k.shape[-1])[0, channels]        # a 1x1 kernel: [in, out]
        folded = k.copy()
        folded[..., channels, :] = 0
        values += [(conv.kernel, folded), (conv.bias, b + np.asarray(means, np.float64) @ rows)]
        changes.append(f"{layer.name}: {len(channels)} of {k.shape[-2]}")
    with assigned(values):
        yield changes

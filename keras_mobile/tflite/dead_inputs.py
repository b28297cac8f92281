"""Int8 PTQ: weights that read an input channel which is zero on every calibration sample are set
to 0 while the file is converted.

Such a channel (a ReLU that never fires) adds nothing, but its weights can be huge: MobileOne's
identity branch folds a BatchNorm whose running variance is ~0 there into gamma / sqrt(eps), ~300
on the fused kernel's diagonal. The int8 weight scale of an output channel is set by its largest
weight, so that one weight leaves the channel's other weights at ~0 steps and its output is lost
(a trained MobileOneS0: relative error 0.02 -> 0.16 at one conv, benchmarks/int8_agreement.py).
On the calibration data the zeroed weights change nothing.
"""
import contextlib

import keras
import numpy as np

from keras_mobile import graph


def input_kernels(layer):
    """Kernel variables of `layer` whose axis -2 runs over the channels of the layer's input: a
    full Conv2D's or Dense's, or those a layer names with `input_channel_kernels()` (protocol)."""
    if hasattr(layer, "input_channel_kernels"):
        return list(layer.input_channel_kernels())
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and getattr(layer, "groups", 1) == 1:
        return [layer.kernel]
    return []


def channel_peaks(model, tensors, samples, batch_size=32):
    """[max |value| per channel (last axis)] of each symbolic tensor of `model` over `samples`
    (arrays shaped like the model input, batch first)."""
    peaks = keras.Model(model.input, [keras.ops.max(keras.ops.abs(t), axis=tuple(range(len(t.shape) - 1)))
                                       for t in tensors])
    x = np.concatenate(samples)
    peak = None
    for i in range(0, len(x), batch_size):
        out = [np.asarray(o) for o in peaks(x[i:i + batch_size], training=False)]
        peak = out if peak is None else [np.maximum(a, b) for a, b in zip(peak, out)]
    return peak


def dead_input_channels(model, samples, batch_size=32):
    """[(layer, channel indices)] of every layer with `input_kernels` whose input channels are
    exactly zero on all `samples` (arrays shaped like the model input, batch first)."""
    calls = [(layer, node) for layer, node in graph.layer_calls(model) if input_kernels(layer)]
    if not calls:
        return []
    peak = channel_peaks(model, [node.input_tensors[0] for _, node in calls], samples, batch_size)
    dead = {}
    for (layer, _), p in zip(calls, peak):       # a layer called twice: dead in every call
        zero = set(np.flatnonzero(p == 0).tolist())
        dead[id(layer)] = (layer, zero if id(layer) not in dead else dead[id(layer)][1] & zero)
    return [(layer, sorted(zero)) for layer, zero in dead.values() if zero]


@contextlib.contextmanager
def dead_inputs_zeroed(model, samples):
    """Zeroes the weights reading `dead_input_channels` inside the block and restores them after;
    yields a list of "layer: channels" strings for the export report."""
    saved, changes = [], []
    for layer, channels in dead_input_channels(model, samples):
        for kernel in input_kernels(layer):
            w = keras.ops.convert_to_numpy(kernel)
            if not np.any(w[..., channels, :]):
                continue
            saved.append((kernel, w))
            zeroed = w.copy()
            zeroed[..., channels, :] = 0
            kernel.assign(zeroed)
            changes.append(f"{layer.name}: {len(channels)} of {w.shape[-2]}")
    try:
        yield changes
    finally:
        for kernel, w in saved:
            kernel.assign(w)

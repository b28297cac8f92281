"""Maps Keras variables to timm keys by layer name and assigns them.

A layer's timm module path is `keras_mobile.layers.naming.to_timm_path(layer.name)`
(`blocks-2-0-conv_dw` -> `blocks.2.0.conv_dw`); its keys are that path + "." + the parameter name.
"""
import keras

from keras_mobile import graph
from keras_mobile.layers.naming import to_timm_path

from keras_mobile.weights.errors import WeightsError

_BY_TYPE = {
    keras.layers.Conv2D: (("kernel", "weight"), ("bias", "bias")),
    keras.layers.DepthwiseConv2D: (("kernel", "weight"), ("bias", "bias")),
    keras.layers.Dense: (("kernel", "weight"), ("bias", "bias")),
    keras.layers.BatchNormalization: (("gamma", "weight"), ("beta", "bias"),
                                      ("moving_mean", "running_mean"),
                                      ("moving_variance", "running_var")),
    keras.layers.LayerNormalization: (("gamma", "weight"), ("beta", "bias")),
}


def timm_keys(layer):
    """[(keras variable, timm key)] for one layer. Custom layers define `timm_keys()` returning
    [(variable, key relative to the layer's module path)], e.g. (qkv.kernel, "qkv.weight")."""
    path = to_timm_path(layer.name)
    if hasattr(layer, "timm_keys"):
        return [(v, f"{path}.{suffix}") for v, suffix in layer.timm_keys()]
    for cls, pairs in _BY_TYPE.items():
        if type(layer) is cls:
            return [(getattr(layer, attr), f"{path}.{suffix}") for attr, suffix in pairs
                    if getattr(layer, attr, None) is not None]
    if layer.weights:
        # e.g. LayerScale: variables named after the timm parameter
        return [(v, f"{path}.{v.name}") for v in layer.weights]
    return []


def assign(model, tensors, source, strict=True):
    """Assigns Keras-layout `tensors` to `model`. Raises WeightsError naming `source` on any
    missing key, shape mismatch, or (strict) unused key; assigns nothing in that case."""
    pairs = [p for layer in graph.leaf_layers(model) for p in timm_keys(layer)]
    missing = [k for _, k in pairs if k not in tensors]
    bad_shape = [(k, tuple(tensors[k].shape), tuple(v.shape)) for v, k in pairs
                 if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)]
    used = {k for _, k in pairs}
    unused = sorted(k for k in tensors if k not in used)
    problems = []
    if missing:
        problems.append(f"{len(missing)} weights missing from the file (e.g. {missing[:3]})")
    if bad_shape:
        k, got, want = bad_shape[0]
        problems.append(f"{len(bad_shape)} shape mismatches (e.g. {k}: file {got}, model {want})")
    if strict and unused:
        problems.append(f"{len(unused)} tensors in the file that {model.name} does not have (e.g. {unused[:3]})")
    if problems:
        raise WeightsError(f"{source} does not match {model.name}: " + "; ".join(problems) +
                           ". Is it a checkpoint of another architecture?")
    for v, k in pairs:
        v.assign(tensors[k])
    return len(pairs)

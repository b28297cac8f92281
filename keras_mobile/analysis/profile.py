"""Per-layer cost of a Keras model: MACs, parameters, weight and activation bytes, intensity.

MACs follow the usual "GMACs" convention (timm / papers, = torch FlopCounterMode FLOPs / 2):
only convolutions (incl. depthwise / grouped / dilated / strided), dense layers (on any rank,
e.g. [B, N, C] token inputs) and the matmuls inside attention count. BN, activations, adds,
pooling and softmax count 0 MACs but still move bytes (which the roofline uses).

Custom layers declare their cost with a `macs(input_shape)` method (input_shape = the layer's
input shape, or a list of shapes for multi-input layers, batch dimension set to the profiled
batch). Keras' conv / dense / MultiHeadAttention layers are counted by the formulas in
`analysis/costs.py`, any other layer by profiling its sublayers one by one from the shapes
they were built with. Composite layers
(MobileOneBlock, AttentionWithBias, nested Models) get a row of their own plus indented child
rows (depth + 1), so their branches are visible; totals count each MAC once.

This module walks the model; the formulas are in `costs`, the rows and report in `profile_report`.
"""
from keras_mobile import graph
from keras_mobile.analysis.costs import (  # noqa: F401
    _known_macs, _nbytes, _numel, _shape, ceil_div, conv_macs, dense_macs, mha_macs)
from keras_mobile.analysis.profile_report import FUSABLE, LayerProfile, Profile  # noqa: F401


def _layer_row(layer, in_shapes, out_shapes, batch, dtype_bytes, depth):
    """Row for one (possibly composite) layer plus rows of its children."""
    import keras
    cls = type(layer).__name__
    trainable = getattr(layer, "trainable_weights", None) or []   # raw keras.ops nodes have none
    params = sum(_numel(tuple(v.shape)) for v in trainable)
    wbytes = sum(_nbytes(v, dtype_bytes) for v in (getattr(layer, "weights", None) or []))
    read = sum(_numel(s) for s in in_shapes) * dtype_bytes
    write = sum(_numel(s) for s in out_shapes) * dtype_bytes
    row = LayerProfile(layer.name, cls, [list(s) for s in in_shapes], [list(s) for s in out_shapes],
                       0, params, wbytes, read, write, depth)
    children = []
    if not isinstance(layer, keras.layers.Layer):
        pass
    elif graph.is_functional(layer):
        children = _graph_rows(layer, batch, dtype_bytes, depth + 1)
    else:
        for sub in graph.sublayers(layer, include_self=False, recursive=False):
            shp = graph.built_input_shape(sub)
            if shp is None:
                continue
            shp = [tuple(shp)] if not (shp and isinstance(shp[0], (list, tuple))) else [tuple(s) for s in shp]
            sub_in = [_shape(s, batch) for s in shp]
            try:
                so = sub.compute_output_shape(sub_in[0] if len(sub_in) == 1 else sub_in)
            except Exception:
                continue
            so = [tuple(so)] if not (so and isinstance(so[0], (list, tuple))) else [tuple(s) for s in so]
            children.append(_layer_row(sub, sub_in, [_shape(s, batch) for s in so], batch, dtype_bytes, depth + 1))

    declared = getattr(layer, "macs", None)
    if callable(declared):
        row.macs = int(declared(in_shapes[0] if len(in_shapes) == 1 else in_shapes))
    else:
        known = _known_macs(layer, in_shapes, out_shapes)
        if known is not None:
            row.macs = int(known)
        elif children:
            row.macs = sum(c.macs for c in children)
    row.children = children
    return row


def _graph_rows(model, batch, dtype_bytes, depth=0):
    """Rows for every call of every layer in a functional model, in topological order."""
    rows = []
    for op, node in graph.layer_calls(model):
        ins = [_shape(t, batch) for t in node.input_tensors]
        outs = [_shape(t, batch) for t in node.outputs]
        rows.append(_layer_row(op, ins, outs, batch, dtype_bytes, depth))
    return rows


def _rebuild(model, input_shape):
    import keras
    inp = keras.Input(shape=tuple(input_shape), name="input")
    return keras.models.clone_model(model, input_tensors=inp)


def build(name, input_shape=None, **kwargs):
    """Build a package model by constructor name with weights=None (for profiling)."""
    from keras_mobile.applications.registry import get_model
    ctor = get_model(name)
    kw = {"weights": None, **kwargs}
    if input_shape is not None:
        kw["input_shape"] = tuple(input_shape)
    return ctor(**kw)


def profile(model, input_shape=None, dtype_bytes=4, batch_size=1):
    """Profile `model` (a Keras model or a package constructor name) layer by layer.

    input_shape (H, W, C): profile at this size (rebuilds a constructor name / clones a
    functional model); default: the model's own static input shape.
    """
    if isinstance(input_shape, int):   # profile(model, dtype_bytes) positional form
        input_shape, dtype_bytes = None, input_shape
    if isinstance(model, str):
        model = build(model, input_shape)
    elif input_shape is not None and tuple(model.inputs[0].shape[1:]) != tuple(input_shape):
        model = _rebuild(model, input_shape)
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"{model.name} has a dynamic input shape {shape}; pass input_shape=(H, W, C)")
    rows = _graph_rows(model, batch_size, dtype_bytes)
    return Profile(model.name, shape, rows, dtype_bytes)


def macs(model, input_shape=None):
    return profile(model, input_shape).macs


LayerCost = LayerProfile   # alias

__all__ = ["LayerCost", "LayerProfile", "Profile", "profile", "macs", "build", "conv_macs", "dense_macs",
           "mha_macs"]

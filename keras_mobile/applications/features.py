"""Multi-scale feature maps from any keras_mobile backbone, without per-family tables.

Generic rule: walk the model's layers in graph (topological) order; a layer's stride is the
input size divided by its output's spatial size; ``P<l>`` is the LAST layer whose output has
stride ``2**l`` (l = 1..5) and that is not part of a downsampling block (layers are named by
timm module path (``to_timm_path``); the block is its first three path components, e.g. ``blocks.5.0``: a
block holding a layer of a larger stride does not provide the finer level). ``P4_expanded`` is the input tensor of the first layer that produces
stride 32 (for MobileNetV3 the expansion output of the first stride-32 inverted residual, the
tap the MobileNetV3 paper's SSDLite and LR-ASPP use; for other families simply a stride-16
map). Layers after the feature trunk (global pooling, classifier: rank-2 outputs) end the walk.
3D token outputs ``(batch, h*w, c)`` (EfficientFormer's attention stage) count with stride
``H / sqrt(h*w)`` and are reshaped back to a 4D map when selected.
"""
import math

import keras

from keras_mobile.layers.naming import to_timm_path

LEVELS = ("P1", "P2", "P3", "P4", "P4_expanded", "P5")


def _spatial(shape, image_hw):
    """(h, w) of a 4D map or of square 3D tokens; None for anything else."""
    if len(shape) == 4 and shape[1] is not None and shape[2] is not None:
        return int(shape[1]), int(shape[2])
    if len(shape) == 3 and shape[1] is not None:
        n = int(shape[1])
        side = int(round(math.sqrt(n)))
        if side * side == n:
            return side, side
        # non-square token grid: try the image aspect ratio
        ih, iw = image_hw
        for s in (2, 4, 8, 16, 32, 64):
            if math.ceil(ih / s) * math.ceil(iw / s) == n:
                return math.ceil(ih / s), math.ceil(iw / s)
    return None


def _stride(hw, image_hw):
    """Power-of-two stride s with ceil(H/s) == h and ceil(W/s) == w, else None."""
    if hw is None:
        return None
    for level in range(0, 7):
        s = 2 ** level
        if math.ceil(image_hw[0] / s) == hw[0] and math.ceil(image_hw[1] / s) == hw[1]:
            return s
    return None


def _layer_outputs(layer):
    out = layer.output
    return out if isinstance(out, (list, tuple)) else [out]


def _layer_inputs(layer):
    inp = layer.input
    if isinstance(inp, dict):
        return list(inp.values())
    return list(inp) if isinstance(inp, (list, tuple)) else [inp]


def _group(name):
    """The block a layer belongs to: its timm module path cut to three components."""
    return ".".join(to_timm_path(name).split(".")[:3])


def _to_map(tensor, hw, name):
    if len(tensor.shape) == 4:
        return tensor
    return keras.layers.Reshape((hw[0], hw[1], tensor.shape[-1]), name=name)(tensor)


def pyramid_outputs(model):
    """Return ``{"P1": tensor, ..., "P5": tensor, "P4_expanded": tensor}`` of a built model.

    Tensors are symbolic outputs of ``model``'s layers (4D NHWC); levels the model does not
    reach are absent. Build a feature model with ``keras.Model(model.inputs, outputs)``.
    """
    if not model.inputs:
        raise ValueError("pyramid_outputs needs a functional model with an input")
    ishape = model.inputs[0].shape
    if ishape[1] is None or ishape[2] is None:
        raise ValueError("pyramid_outputs needs a static input size, got input shape "
                         f"{tuple(ishape)}")
    image_hw = (int(ishape[1]), int(ishape[2]))
    records = []   # (layer, tensor, hw, stride) in graph order
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            outs = _layer_outputs(layer)
        except (AttributeError, ValueError):   # shared layer: ambiguous output
            continue
        if any(len(o.shape) <= 2 for o in outs):   # pooled / classifier: head reached
            break
        for o in outs:
            hw = _spatial(o.shape, image_hw)
            s = _stride(hw, image_hw)
            if s is not None and 2 <= s <= 32:
                records.append((layer, o, hw, s))
    # A block that downsamples (its timm module path, e.g. "blocks.5.0", holds a layer of a
    # larger stride) does not provide the finer level: its stride-16 expansion is not P4.
    max_stride = {}
    for layer, _, _, s in records:
        g = _group(layer.name)
        max_stride[g] = max(max_stride.get(g, 0), s)
    found = {}
    first32 = None
    for layer, o, hw, s in records:
        if s == 32 and first32 is None:
            first32 = layer
        if max_stride[_group(layer.name)] > s:
            continue
        found[f"P{int(math.log2(s))}"] = (o, hw)
    result = {k: _to_map(t, hw, f"features_{k}") for k, (t, hw) in found.items()}
    if first32 is not None:
        inp = _layer_inputs(first32)[0]
        # walk back through padding layers (symmetric "torch" padding before strided convs)
        hist = getattr(inp, "_keras_history", None)
        while hist is not None and isinstance(hist[0], (keras.layers.ZeroPadding2D,)):
            inp = hist[0].input
            hist = getattr(inp, "_keras_history", None)
        hw = _spatial(inp.shape, image_hw)
        if _stride(hw, image_hw) == 16:
            result["P4_expanded"] = _to_map(inp, hw, "features_P4_expanded")
    return result


def feature_extractor(backbone, levels=("P3", "P4", "P5"), weights=None, input_shape=None,
                      output_stride=32, name=None, **kwargs):
    """A Keras model mapping images to a dict ``{level: feature map}``.

    Args:
        backbone: a constructor name (``"MobileNetV4ConvS"``) or a built model (normally
            ``include_top=False``).
        levels: keys of `pyramid_outputs` to return (``"P1"``..``"P5"``, ``"P4_expanded"``).
        weights, input_shape, output_stride, **kwargs: passed to the constructor when
            ``backbone`` is a name. With ``output_stride=16`` the last stage is atrous and
            "P5" is absent (its maps are stride 16: the last stride-16 layer is ``"P4"``).
    """
    if isinstance(backbone, str):
        import keras_mobile.applications as apps
        ctor = getattr(apps, backbone, None)
        if ctor is None or not callable(ctor):
            raise ValueError(f"unknown backbone {backbone!r}")
        if output_stride != 32:
            kwargs["output_stride"] = output_stride
        backbone = ctor(include_top=False, weights=weights, input_shape=input_shape, **kwargs)
    elif not isinstance(backbone, keras.Model):
        raise ValueError(f"backbone must be a constructor name or a keras.Model, got {backbone!r}")
    maps = pyramid_outputs(backbone)
    if isinstance(levels, str):
        levels = (levels,)
    missing = [lv for lv in levels if lv not in maps]
    if missing:
        raise ValueError(f"levels {missing} not available from {backbone.name}; "
                         f"available: {sorted(maps)}")
    outputs = {lv: maps[lv] for lv in levels}
    return keras.Model(backbone.inputs, outputs, name=name or f"{backbone.name}_features")

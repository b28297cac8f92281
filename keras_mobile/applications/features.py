"""Multi-scale feature maps of any keras_mobile backbone, from the endpoints recorded at build.

`builder.build_trunk` records, while it walks the rows, ``P<l>`` = the last row output (a 4D
map) at stride ``2**l`` (l = 1..5, the stem included) and ``P4_expanded`` = the tensor the first
row reaching stride 32 downsamples (for MobileNetV3 the expansion output of the first stride-32
inverted residual, the tap the MobileNetV3 paper's SSDLite and LR-ASPP use; for rows without an
expansion simply their stride-16 input). The built model keeps them as
``model.feature_endpoints`` ({level: layer name}); the registry keeps them per constructor.
"""
import keras

LEVELS = ("P1", "P2", "P3", "P4", "P4_expanded", "P5")


def pyramid_outputs(model):
    """Return ``{"P1": tensor, ..., "P5": tensor, "P4_expanded": tensor}`` of a built model.

    Tensors are symbolic outputs of ``model``'s layers (4D NHWC); levels the model does not
    reach are absent. Build a feature model with ``keras.Model(model.inputs, outputs)``.
    A model loaded from a file has lost them (ValueError): pass the constructor name instead.
    """
    if not isinstance(model, keras.Model) or not model.inputs:
        raise ValueError("pyramid_outputs needs a functional keras_mobile model with an input")
    endpoints = getattr(model, "feature_endpoints", None)
    if endpoints is None:
        raise ValueError(f"{model.name} has no recorded feature endpoints: build it with a keras_mobile "
                         f"constructor (a model loaded from a file loses them; pass the constructor "
                         f"name to feature_extractor instead)")
    return {level: model.get_layer(name).output for level, name in endpoints.items()}


def feature_extractor(backbone, levels=("P3", "P4", "P5"), weights=None, input_shape=None,
                      output_stride=32, name=None, **kwargs):
    """A Keras model mapping images to a dict ``{level: feature map}``.

    Args:
        backbone: a constructor name (``"MobileNetV4ConvS"``) or a built model (normally
            ``include_top=False``).
        levels: keys of `pyramid_outputs` to return (``"P1"``..``"P5"``, ``"P4_expanded"``).
        weights, input_shape, output_stride, **kwargs: passed to the constructor when
            ``backbone`` is a name. With ``output_stride=16`` the last stage is atrous and
            "P5" is absent (its maps are stride 16: the last stride-16 row is ``"P4"``).
    """
    if isinstance(backbone, str):
        from keras_mobile.applications import registry
        try:
            ctor = registry.get_model(backbone)
        except ValueError:
            raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(registry.names())}") from None
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

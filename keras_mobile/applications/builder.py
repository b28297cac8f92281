"""One builder for every family: a table of rows -> a Keras functional model.

`build_trunk` walks a ModelSpec's stem and stage rows through the block registry
(`blocks.BLOCKS`), names each row's modules by the family's path template, applies the
output-stride rule and records the feature endpoints (the last map of each stride, and the
tensor the first stride-32 row downsamples). `build_model` owns what every constructor shares
(argument checks in the keras.applications style, input/preprocessing, the top from
`tops.TOPS`, pooling, weights); `define_constructor` makes and registers the public
constructors.
"""
import inspect
import math
from dataclasses import dataclass
from typing import Optional

import keras

from keras_mobile.applications import registry as model_registry
from keras_mobile.applications._docs import ARGS_DOC
from keras_mobile.applications.blocks import BLOCKS, BlockContext
from keras_mobile.applications.tops import TOPS
from keras_mobile.layers.naming import child, to_layer_name


@dataclass(frozen=True)
class ModelSpec:
    name: str                       # Keras model / constructor name, e.g. "MobileNetV4ConvS"
    timm_name: str                  # the timm architecture whose checkpoints load into it
    stem: tuple = ()                # BlockSpec rows before the stages
    stages: tuple = ()              # tuple of stages, each a tuple of BlockSpec rows
    block_path: str = "blocks.{stage}.{index}"   # timm module path of a stage's index-th module
    top: str = "mobilenet"          # classification top (tops.TOPS)
    act: str = "relu"
    num_features: int = 1280        # width of the 1x1 conv head (timm head_hidden_size)
    head_bias: bool = True
    head_norm: bool = False
    bn_eps: float = 1e-5
    padding: str = "torch"          # "torch" (symmetric) or "same" (TF-trained checkpoints)
    layer_scale: Optional[float] = None
    se_act: str = "relu"
    se_gate: str = "hard_sigmoid"
    channel_multiplier: float = 1.0
    fix_stem: bool = False
    attention: bool = False         # has attention: needs a static input size
    fixed_size: Optional[int] = None  # only this input size is valid (e.g. learned attention biases)
    inference_mode: bool = False    # MobileOne: build the fused (one conv per block) form

    def __post_init__(self):
        if self.top not in TOPS:
            raise ValueError(f"unknown top {self.top!r}; known: {sorted(TOPS)}")

    @property
    def stem_width(self):
        return self.stem[-1].out if self.stem else 0


def _record(endpoints, stride, x):
    if len(x.shape) == 4 and 2 <= stride <= 32:
        endpoints[f"P{int(math.log2(stride))}"] = x


def row_names(spec, kind, stage, index, min_names=0):
    """Layer names (timm paths in naming form) of a row of block type `kind` at module `index` of
    `stage`: the type's fixed path, else one name per module index it takes."""
    if kind.path:
        return (to_layer_name(kind.path.format(stage=stage)),)
    return tuple(to_layer_name(spec.block_path.format(stage=stage, index=index + k))
                 for k in range(max(kind.names, min_names)))


def build_trunk(x, spec, drop_path_rate=0.0, output_stride=32, on_block=None):
    """Stem + stage rows of `spec` -> (feature map, endpoints).

    endpoints: {"P<l>": tensor} the last 4D row output at stride 2**l, and "P4_expanded": the
    tensor the first row that reaches stride 32 downsamples (a layer name when it is inside the
    row, e.g. the expansion of an inverted residual). Over `output_stride`, a strided row keeps
    the resolution (dilating where its type can); types without that raise ValueError.
    on_block(row_index, x_in, x_out), if given, is called after each expanded stage row (the search
    finds a row's layers in the graph from it, without reading layer names)."""
    endpoints, stride = {}, 1
    for i, row in enumerate(spec.stem):
        x = BLOCKS[row.type].build(x, row, BlockContext(spec, (), row.stride, index=i))
        stride *= row.stride
        _record(endpoints, stride, x)
    total = sum(b.repeat for stage in spec.stages for b in stage if BLOCKS[b.type].depth)
    depth_index = row_index = 0
    dilation = 1
    for si, stage in enumerate(spec.stages):
        bi = 0
        for b in stage:
            kind = BLOCKS[b.type]
            for r in range(b.repeat):
                names = row_names(spec, kind, si, bi)
                s = b.stride if r == 0 else 1
                if s > 1 and stride * s > output_stride:
                    if kind.atrous is None:
                        raise ValueError(f"{spec.name} supports output_stride=32 only: its row {names[0]} "
                                         f"({kind.doc}) has no atrous form")
                    if kind.atrous == "dilate":
                        dilation *= s
                    s = 1
                dpr = drop_path_rate * depth_index / total if kind.depth else 0.0
                ctx = BlockContext(spec, names, s, dilation, dpr, index=bi)
                x_in = x
                x = kind.build(x, b, ctx)
                if s > 1 and stride == 16 and "P4_expanded" not in endpoints:
                    tap = kind.tap_path(b)
                    endpoints["P4_expanded"] = child(names[0], tap) if tap else x_in
                stride *= s
                _record(endpoints, stride, x)
                if on_block is not None:
                    on_block(row_index, x_in, x)
                row_index += 1
                depth_index += kind.depth
                bi += 0 if kind.path else kind.names
    return x, endpoints


def _endpoint_names(model, endpoints):
    """{level: layer name} of the recorded endpoint tensors (names stay valid in any copy)."""
    by_output = {}
    for layer in model.layers:
        try:
            by_output[id(layer.output)] = layer.name
        except (AttributeError, ValueError):   # input layer / shared layer: not an endpoint
            continue
    return {level: t if isinstance(t, str) else by_output[id(t)] for level, t in endpoints.items()}


def build_model(spec, *, include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", include_preprocessing=True,
                name=None, dropout_rate=0.0, drop_path_rate=0.0, output_stride=32, on_block=None):
    """Shared constructor body; see any public constructor for the argument docs.

    The model carries `feature_endpoints` ({level: layer name}, see `build_trunk`) and
    `timm_name`; on_block is passed to `build_trunk`."""
    from keras_mobile.weights.source import parse
    weights = parse(spec.timm_name, weights)   # once: str / pathlib.Path / tag / None
    if weights.kind == "hub" and weights.timm_name != spec.timm_name:
        raise ValueError(f"weights={weights!r} was parsed for {weights.timm_name}, but this model is "
                         f"{spec.timm_name}; pass the tag itself")
    info = _check_arguments(spec, include_top, weights, input_tensor, input_shape, pooling, classes,
                            output_stride)
    size = info["default_size"]
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = (size, size, 3)
    input_shape = _check_input_shape(spec, input_shape, weights)
    if include_preprocessing and input_shape[-1] != 3:
        raise ValueError(f"include_preprocessing=True normalises 3 RGB channels with per-channel mean/std, "
                         f"but input_shape={input_shape} has {input_shape[-1]} channels: pass "
                         f"include_preprocessing=False and normalise the inputs yourself")

    if input_tensor is None:
        img_input = keras.Input(shape=input_shape, name="input")
    elif keras.backend.is_keras_tensor(input_tensor):
        img_input = input_tensor
    else:
        img_input = keras.Input(tensor=input_tensor, shape=input_shape, name="input")

    x = img_input
    if include_preprocessing:
        # raw [0, 255] pixels in; normalisation of the weights' training recipe baked in
        mean, std = info["mean"], info["std"]
        x = keras.layers.Rescaling(scale=[1.0 / (255.0 * s) for s in std],
                                   offset=[-m / s for m, s in zip(mean, std)],
                                   name="preprocessing")(x)
    x, endpoints = build_trunk(x, spec, drop_path_rate=drop_path_rate, output_stride=output_stride,
                               on_block=on_block)
    if include_top:
        # mixed precision: logits in the compute dtype, softmax and output in float32 (Keras guide)
        float32_out = keras.config.dtype_policy().compute_dtype != "float32"
        x = TOPS[spec.top].build(x, spec, classes, None if float32_out else classifier_activation, dropout_rate)
        if float32_out:
            x = keras.layers.Activation(classifier_activation or "linear", dtype="float32",
                                        name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x) if len(x.shape) == 4 else \
            keras.layers.GlobalAveragePooling1D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x) if len(x.shape) == 4 else \
            keras.layers.GlobalMaxPooling1D(name="max_pool")(x)

    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = keras.Model(inputs, x, name=name or spec.name)
    # informational (CLI, analysis, heads); not saved with the model
    model.timm_name = spec.timm_name
    model.feature_endpoints = _endpoint_names(model, endpoints)
    if weights.kind != "none":
        from keras_mobile.weights.loader import load_weights
        load_weights(model, spec.timm_name, weights, include_top=include_top)
    return model


def define_constructor(model_name, *, family, timm_name, make_spec, summary, example_tag, size,
                       extra_args=None, extra_doc="", aliases=None):
    """The keras.applications-style constructor of one model, registered in the model registry.

    make_spec(weights=..., **extra) -> ModelSpec, where `extra` are the family's own keyword
    arguments (`extra_args`: name -> default, e.g. MobileNetV3's alpha/minimalistic), which the
    constructor's signature lists after the shared ones. `summary` opens the docstring,
    `extra_doc` documents the extra arguments. aliases: {model name: extra arguments} for the
    names the constructor gives models built with other extra arguments
    ("MobileNetV3SmallMinimal": {"minimalistic": True}), so the registry finds their table.
    """
    extra_args = dict(extra_args or {})
    features = {}     # output_stride -> endpoints, recorded by the builds below

    def constructor(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name=None, **kwargs):
        extra = {k: kwargs.pop(k, default) for k, default in extra_args.items()}
        model = build_model(make_spec(weights=weights, **extra), include_top=include_top, weights=weights,
                            input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                            classes=classes, classifier_activation=classifier_activation,
                            include_preprocessing=include_preprocessing, name=name, **kwargs)
        features.setdefault(kwargs.get("output_stride", 32), dict(model.feature_endpoints))
        return model

    # help() and IDEs show the family's extra arguments as real keyword parameters
    params = list(inspect.signature(constructor).parameters.values())
    extras = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d) for k, d in extra_args.items()]
    constructor.__signature__ = inspect.Signature(params[:-1] + extras + params[-1:])
    constructor.__name__ = constructor.__qualname__ = model_name
    doc = ARGS_DOC.format(example_tag=example_tag, size=size)
    if extra_doc:
        doc = doc.replace("    Returns:", extra_doc.strip("\n") + "\n\n    Returns:")
    constructor.__doc__ = summary + "\n" + doc
    model_registry.register(model_registry.ModelEntry(
        model_name, family, timm_name, constructor, make_spec=make_spec, defaults=extra_args,
        classifier=TOPS[make_spec(weights=None, **extra_args).top].classifier, features=features), aliases)
    return constructor


def _check_arguments(spec, include_top, weights, input_tensor, input_shape, pooling, classes,
                     output_stride):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if output_stride not in (16, 32):
        raise ValueError(f"output_stride must be 16 or 32, got {output_stride!r}")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive int, got {classes!r}")
    info = weights.preprocessing()
    if weights.kind == "hub":
        ckpt_classes = weights.num_classes
        if include_top and classes != ckpt_classes:
            raise ValueError(
                f"weights={weights!r} has a {ckpt_classes}-class classifier, but classes={classes}. "
                f"Use include_top=False (and add your own head), or classes={ckpt_classes}, "
                f"or weights=None.")
    return info


def _check_input_shape(spec, input_shape, weights):
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    h, w, c = input_shape
    if weights.kind != "none" and c != 3:
        raise ValueError(f"pretrained weights expect 3 input channels, got input_shape={input_shape}")
    for d in (h, w):
        if d is None:
            if spec.attention or spec.fixed_size:
                raise ValueError(f"{spec.name} has attention layers and needs a static input size, "
                                 f"got input_shape={input_shape}")
        elif d < 32:
            raise ValueError(f"input size must be at least 32, got input_shape={input_shape}")
    if spec.fixed_size and (h, w) != (spec.fixed_size, spec.fixed_size):
        raise ValueError(f"{spec.name} only supports {spec.fixed_size}x{spec.fixed_size} inputs "
                         f"(its attention biases are learned for that grid), got input_shape={input_shape}")
    return input_shape

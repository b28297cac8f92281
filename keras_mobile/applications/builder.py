"""One builder for every family: a table of BlockSpec rows -> a Keras functional model.

`build_model` owns what every constructor shares (argument checks in the keras.applications
style, input/preprocessing, pooling, weights); a family supplies a trunk function (and, when
its head differs from the MobileNet one, a head function). `mobilenet_trunk` turns
MobileNetV3/V4 tables into blocks.
"""
import inspect
import os
from dataclasses import dataclass, field
from typing import Callable, Optional

import keras

from keras_mobile import layers as L
from keras_mobile.applications import registry as model_registry
from keras_mobile.applications._docs import ARGS_DOC
from keras_mobile.applications.block_spec import make_divisible
from keras_mobile.weights import registry
from keras_mobile.layers.naming import to_layer_name


@dataclass(frozen=True)
class ModelSpec:
    name: str                       # Keras model / constructor name, e.g. "MobileNetV4ConvS"
    timm_name: str                  # the timm architecture whose checkpoints load into it
    stages: tuple = ()              # tuple of stages, each a tuple of BlockSpec
    stem: int = 16
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
    extra: dict = field(default_factory=dict)


def round_channels(c, multiplier):
    return make_divisible(c * multiplier) if multiplier != 1.0 else c


def mobilenet_trunk(x, spec, drop_path_rate=0.0, output_stride=32, on_block=None):
    """Stem + blocks of a MobileNetV3/V4 table (timm `MobileNetV3.forward_features`).

    on_block(row, x_in, x_out), if given, is called after each expanded table row (the search
    uses it to find a row's layers in the graph without reading layer names)."""
    stem = spec.stem if spec.fix_stem else round_channels(spec.stem, spec.channel_multiplier)
    x = L.conv_bn_act(x, stem, 3, 2, act=spec.act, bn_eps=spec.bn_eps, padding=spec.padding,
                      conv_name="conv_stem", bn_name="bn1", act_name="act1")
    total = sum(b.repeat for stage in spec.stages for b in stage)
    index, stride, dilation = 0, 2, 1
    for si, stage in enumerate(spec.stages):
        bi = 0
        for b in stage:
            for r in range(b.repeat):
                s = b.stride if r == 0 else 1
                if s > 1 and stride * s > output_stride:   # atrous: keep resolution, grow dilation
                    dilation *= s
                    s = 1
                stride *= s
                x_in = x
                x = _block(x, b, s, spec, drop_path_rate * index / total,
                           to_layer_name(f"blocks.{si}.{bi}"), dilation)
                if on_block is not None:
                    on_block(index, x_in, x)
                index += 1
                bi += 1
    return x


def _block(x, b, strides, spec, dpr, name, dilation=1):
    act = b.act or spec.act
    out = round_channels(b.out, spec.channel_multiplier)
    common = dict(bn_eps=spec.bn_eps, padding=spec.padding, drop_path_rate=dpr, name=name)
    in_ch = x.shape[-1]
    if b.type == "cn":
        return L.conv_block(x, out, b.kernel, strides, act=act, skip=bool(b.skip), dilation=dilation, **common)
    if b.type == "ds":
        se = make_divisible(in_ch * b.se) if b.se else 0
        return L.depthwise_separable(x, out, b.kernel, strides, act, se, spec.se_act, spec.se_gate,
                                     noskip=b.skip is False, dilation=dilation, **common)
    if b.type == "ir":
        mid = b.mid or make_divisible(in_ch * b.expand)
        se = make_divisible(mid * b.se) if b.se else 0
        return L.inverted_residual(x, out, mid, b.kernel, strides, act, se, spec.se_act, spec.se_gate,
                                   noskip=b.skip is False, dilation=dilation, **common)
    if b.type == "er":
        mid = b.mid or make_divisible(in_ch * b.expand)
        return L.fused_inverted_bottleneck(x, out, mid, b.kernel, strides, act,
                                           noskip=b.skip is False, dilation=dilation, **common)
    if b.type == "uir":
        mid = b.mid or make_divisible(in_ch * b.expand)
        return L.universal_inverted_bottleneck(x, out, mid, b.start_kernel, b.kernel, strides, act,
                                               spec.layer_scale, noskip=b.skip is False,
                                               dilation=dilation, **common)
    if b.type in ("mqa", "mha"):
        return L.mobile_attention(x, out, b.heads, b.key_dim, b.key_dim, b.kv_stride, b.kernel,
                                  kv_heads=1 if b.type == "mqa" else b.heads,
                                  layer_scale=spec.layer_scale, noskip=b.skip is False, **common)
    raise ValueError(f"unknown block type {b.type}")


def mobilenet_head(x, spec, classes, classifier_activation, dropout_rate):
    """timm MobileNetV3 'efficient head': pool -> 1x1 conv (+BN) -> act -> classifier."""
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(x)
    x = keras.layers.Conv2D(spec.num_features, 1, use_bias=spec.head_bias and not spec.head_norm,
                            name="conv_head")(x)
    if spec.head_norm:
        x = keras.layers.BatchNormalization(epsilon=spec.bn_eps, momentum=0.9, name="norm_head")(x)
    x = L.get_activation(spec.act, "act2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    return keras.layers.Dense(classes, activation=classifier_activation, name="classifier")(x)


def build_model(spec, *, trunk_fn: Callable = None, head_fn: Callable = None, include_top=True,
                weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, name=None,
                dropout_rate=0.0, drop_path_rate=0.0, output_stride=32):
    """Shared constructor body; see any public constructor for the argument docs."""
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)   # pathlib.Path works like the str path
    trunk_fn = trunk_fn or mobilenet_trunk
    head_fn = head_fn or mobilenet_head
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
    x = trunk_fn(x, spec, drop_path_rate=drop_path_rate, output_stride=output_stride)
    if include_top:
        # mixed precision: logits in the compute dtype, softmax and output in float32 (Keras guide)
        float32_out = keras.config.dtype_policy().compute_dtype != "float32"
        x = head_fn(x, spec, classes, None if float32_out else classifier_activation, dropout_rate)
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
    model.timm_name = spec.timm_name   # informational (CLI/analysis); not saved with the model
    if weights is not None:
        from keras_mobile.weights.loader import load_weights
        load_weights(model, spec.timm_name, weights, include_top=include_top)
    return model


def define_constructor(model_name, *, family, timm_name, make_spec, summary, example_tag, size,
                       trunk_fn=None, head_fn=None, extra_args=None, extra_doc=""):
    """The keras.applications-style constructor of one model, registered in the model registry.

    make_spec(weights=..., **extra) -> ModelSpec, where `extra` are the family's own keyword
    arguments (`extra_args`: name -> default, e.g. MobileNetV3's alpha/minimalistic), which the
    constructor's signature lists after the shared ones. `summary` opens the docstring,
    `extra_doc` documents the extra arguments.
    """
    extra_args = dict(extra_args or {})

    def constructor(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name=None, **kwargs):
        extra = {k: kwargs.pop(k, default) for k, default in extra_args.items()}
        return build_model(make_spec(weights=weights, **extra), trunk_fn=trunk_fn, head_fn=head_fn,
                           include_top=include_top, weights=weights, input_tensor=input_tensor,
                           input_shape=input_shape, pooling=pooling, classes=classes,
                           classifier_activation=classifier_activation,
                           include_preprocessing=include_preprocessing, name=name, **kwargs)

    # help() and IDEs show the family's extra arguments as real keyword parameters
    params = list(inspect.signature(constructor).parameters.values())
    extras = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d) for k, d in extra_args.items()]
    constructor.__signature__ = inspect.Signature(params[:-1] + extras + params[-1:])
    constructor.__name__ = constructor.__qualname__ = model_name
    doc = ARGS_DOC.format(example_tag=example_tag, size=size)
    if extra_doc:
        doc = doc.replace("    Returns:", extra_doc.strip("\n") + "\n\n    Returns:")
    constructor.__doc__ = summary + "\n" + doc
    model_registry.register(model_registry.ModelEntry(model_name, family, timm_name, constructor))
    return constructor


def _check_arguments(spec, include_top, weights, input_tensor, input_shape, pooling, classes,
                     output_stride):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if output_stride not in (16, 32):
        raise ValueError(f"output_stride must be 16 or 32, got {output_stride!r}")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive int, got {classes!r}")
    info = registry.preprocessing_info(spec.timm_name, weights)
    if weights is not None and not (isinstance(weights, str) and os.path.isfile(weights)):
        ckpt_classes = registry.resolve(spec.timm_name, weights).num_classes
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
    if weights is not None and c != 3:
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

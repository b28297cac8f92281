"""MobileNetV3 Large/Small (Howard et al., 2019), timm-exact.

Tables follow timm `_gen_mobilenet_v3`. `minimalistic=True` (no SE, no hard-swish, 3x3 only)
matches timm's `tf_mobilenetv3_*_minimal_100`, the published minimal checkpoints, which were
trained in TF: BN eps 1e-3 and TF "same" padding.
"""
from keras_mobile.applications._docs import ARGS_DOC
from keras_mobile.applications.block_spec import cn, ds, ir
from keras_mobile.applications.builder import ModelSpec, build_model

LARGE = (
    (ds(16, k=3, s=1, act="relu"),),
    (ir(24, k=3, s=2, e=4, act="relu"), ir(24, k=3, s=1, e=3, act="relu")),
    (ir(40, k=5, s=2, e=3, se=0.25, act="relu", r=3),),
    (ir(80, k=3, s=2, e=6), ir(80, k=3, s=1, e=2.5), ir(80, k=3, s=1, e=2.3, r=2)),
    (ir(112, k=3, s=1, e=6, se=0.25, r=2),),
    (ir(160, k=5, s=2, e=6, se=0.25, r=3),),
    (cn(960, k=1),),
)
SMALL = (
    (ds(16, k=3, s=2, se=0.25, act="relu"),),
    (ir(24, k=3, s=2, e=4.5, act="relu"), ir(24, k=3, s=1, e=3.67, act="relu")),
    (ir(40, k=5, s=2, e=4, se=0.25), ir(40, k=5, s=1, e=6, se=0.25, r=2)),
    (ir(48, k=5, s=1, e=3, se=0.25, r=2),),
    (ir(96, k=5, s=2, e=6, se=0.25, r=3),),
    (cn(576, k=1),),
)
LARGE_MINIMAL = (
    (ds(16, k=3, s=1),),
    (ir(24, k=3, s=2, e=4), ir(24, k=3, s=1, e=3)),
    (ir(40, k=3, s=2, e=3, r=3),),
    (ir(80, k=3, s=2, e=6), ir(80, k=3, s=1, e=2.5), ir(80, k=3, s=1, e=2.3, r=2)),
    (ir(112, k=3, s=1, e=6, r=2),),
    (ir(160, k=3, s=2, e=6, r=3),),
    (cn(960, k=1),),
)
SMALL_MINIMAL = (
    (ds(16, k=3, s=2),),
    (ir(24, k=3, s=2, e=4.5), ir(24, k=3, s=1, e=3.67)),
    (ir(40, k=3, s=2, e=4), ir(40, k=3, s=1, e=6, r=2)),
    (ir(48, k=3, s=1, e=3, r=2),),
    (ir(96, k=3, s=2, e=6, r=3),),
    (cn(576, k=1),),
)


def mobilenetv3_spec(size, alpha=1.0, minimalistic=False):
    if size not in ("large", "small"):
        raise ValueError(f"size must be 'large' or 'small', got {size!r}")
    if not 0.1 <= alpha <= 2.0:
        raise ValueError(f"alpha must be in [0.1, 2.0], got {alpha}")
    large = size == "large"
    pct = int(round(alpha * 100))
    stages = {(True, False): LARGE, (False, False): SMALL,
              (True, True): LARGE_MINIMAL, (False, True): SMALL_MINIMAL}[(large, minimalistic)]
    return ModelSpec(
        name=f"MobileNetV3{'Large' if large else 'Small'}" + ("Minimal" if minimalistic else ""),
        timm_name=(f"tf_mobilenetv3_{size}_minimal_{pct:03d}" if minimalistic
                   else f"mobilenetv3_{size}_{pct:03d}"),
        stages=stages, stem=16, act="relu" if minimalistic else "hard_swish",
        num_features=1280 if large else 1024, head_bias=True, head_norm=False,
        bn_eps=1e-3 if minimalistic else 1e-5, padding="same" if minimalistic else "torch",
        channel_multiplier=alpha, fix_stem=alpha < 0.75)


def MobileNetV3Large(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name=None, alpha=1.0, minimalistic=False, **kwargs):
    return build_model(mobilenetv3_spec("large", alpha, minimalistic), include_top=include_top,
                       weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                       pooling=pooling, classes=classes, classifier_activation=classifier_activation,
                       include_preprocessing=include_preprocessing, name=name, **kwargs)


def MobileNetV3Small(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax",
                     include_preprocessing=True, name=None, alpha=1.0, minimalistic=False, **kwargs):
    return build_model(mobilenetv3_spec("small", alpha, minimalistic), include_top=include_top,
                       weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                       pooling=pooling, classes=classes, classifier_activation=classifier_activation,
                       include_preprocessing=include_preprocessing, name=name, **kwargs)


_EXTRA = """
        alpha: width multiplier (timm channel_multiplier; published: Large 1.0 (0.75 with
            minimalistic=False via tf_ weights is not mapped), Small 0.5/0.75/1.0).
        minimalistic: no SE, no hard-swish, 3x3 kernels only (timm tf_mobilenetv3_*_minimal_100).
"""
for _fn, _tag in ((MobileNetV3Large, "ra4_e3600_r224_in1k"), (MobileNetV3Small, "lamb_in1k")):
    _fn.__doc__ = (f"Instantiates the {_fn.__name__} architecture (Howard et al., 2019, "
                   f"'Searching for MobileNetV3').\n" + ARGS_DOC.format(example_tag=_tag, size=224)
                   .replace("    Returns:", _EXTRA.strip("\n") + "\n\n    Returns:"))

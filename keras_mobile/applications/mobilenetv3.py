"""MobileNetV3 Large/Small (Howard et al., 2019), timm-exact.

Tables follow timm `_gen_mobilenet_v3`. `minimalistic=True` (no SE, no hard-swish, 3x3 only)
matches timm's `tf_mobilenetv3_*_minimal_100`, the published minimal checkpoints, which were
trained in TF: BN eps 1e-3 and TF "same" padding.
"""
from keras_mobile.applications.blocks import BlockSpec, cn, ds, ir
from keras_mobile.applications.builder import ModelSpec, define_constructor

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
        stem=(BlockSpec("conv_stem", 16, stride=2, kernel=3),), stages=stages,
        act="relu" if minimalistic else "hard_swish",
        num_features=1280 if large else 1024, head_bias=True, head_norm=False,
        bn_eps=1e-3 if minimalistic else 1e-5, padding="same" if minimalistic else "torch",
        channel_multiplier=alpha, fix_stem=alpha < 0.75)


_EXTRA = """
        alpha: width multiplier (timm channel_multiplier; published: Large 1.0 (0.75 with
            minimalistic=False via tf_ weights is not mapped), Small 0.5/0.75/1.0).
        minimalistic: no SE, no hard-swish, 3x3 kernels only (timm tf_mobilenetv3_*_minimal_100).
"""


def _constructor(size, example_tag):
    name = f"MobileNetV3{size.title()}"
    return define_constructor(
        name, family="mobilenetv3", timm_name=f"mobilenetv3_{size}_100",
        make_spec=lambda weights, alpha, minimalistic: mobilenetv3_spec(size, alpha, minimalistic),
        summary=f"Instantiates the {name} architecture (Howard et al., 2019, 'Searching for MobileNetV3').",
        example_tag=example_tag, size=224, extra_args={"alpha": 1.0, "minimalistic": False},
        extra_doc=_EXTRA, aliases={name + "Minimal": {"minimalistic": True}})


MobileNetV3Large = _constructor("large", "ra4_e3600_r224_in1k")
MobileNetV3Small = _constructor("small", "lamb_in1k")

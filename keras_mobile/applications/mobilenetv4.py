"""MobileNetV4 (Qin et al., 2024): UIB, FusedIB and Mobile MQA, timm-exact.

Tables follow timm `_gen_mobilenet_v4`: `uir(c, a, k, s, e)` = UIB with start dw kernel `a`
and mid dw kernel `k` (0 = absent), `er` = FusedIB, `mqa` = Mobile MQA (kv_stride 2 = K/V
downsampled by a strided depthwise conv).
"""
from keras_mobile.applications.blocks import BlockSpec, cn, er, mqa, uir
from keras_mobile.applications.builder import ModelSpec, define_constructor

CONV_SMALL = (
    (cn(32, k=3, s=2), cn(32, k=1)),
    (cn(96, k=3, s=2), cn(64, k=1)),
    (uir(96, a=5, k=5, s=2, e=3), uir(96, a=0, k=3, e=2, r=4), uir(96, a=3, k=0, e=4)),
    (uir(128, a=3, k=3, s=2, e=6), uir(128, a=5, k=5, e=4), uir(128, a=0, k=5, e=4),
     uir(128, a=0, k=5, e=3), uir(128, a=0, k=3, e=4, r=2)),
    (cn(960, k=1),),
)
CONV_MEDIUM = (
    (er(48, k=3, s=2, e=4),),
    (uir(80, a=3, k=5, s=2, e=4), uir(80, a=3, k=3, e=2)),
    (uir(160, a=3, k=5, s=2, e=6), uir(160, a=3, k=3, e=4, r=2), uir(160, a=3, k=5, e=4),
     uir(160, a=3, k=3, e=4), uir(160, a=3, k=0, e=4), uir(160, a=0, k=0, e=2),
     uir(160, a=3, k=0, e=4)),
    (uir(256, a=5, k=5, s=2, e=6), uir(256, a=5, k=5, e=4), uir(256, a=3, k=5, e=4, r=2),
     uir(256, a=0, k=0, e=4), uir(256, a=3, k=0, e=4), uir(256, a=3, k=5, e=2),
     uir(256, a=5, k=5, e=4), uir(256, a=0, k=0, e=4, r=2), uir(256, a=5, k=0, e=2)),
    (cn(960, k=1),),
)
CONV_LARGE = (
    (er(48, k=3, s=2, e=4),),
    (uir(96, a=3, k=5, s=2, e=4), uir(96, a=3, k=3, e=4)),
    (uir(192, a=3, k=5, s=2, e=4), uir(192, a=3, k=3, e=4, r=3), uir(192, a=3, k=5, e=4),
     uir(192, a=5, k=3, e=4, r=5), uir(192, a=3, k=0, e=4)),
    (uir(512, a=5, k=5, s=2, e=4, r=4), uir(512, a=5, k=0, e=4), uir(512, a=5, k=3, e=4),
     uir(512, a=5, k=0, e=4, r=2), uir(512, a=5, k=3, e=4), uir(512, a=5, k=5, e=4),
     uir(512, a=5, k=0, e=4, r=3)),
    (cn(960, k=1),),
)
HYBRID_MEDIUM = (
    (er(48, k=3, s=2, e=4),),
    (uir(80, a=3, k=5, s=2, e=4), uir(80, a=3, k=3, e=2)),
    (uir(160, a=3, k=5, s=2, e=6), uir(160, a=0, k=0, e=2), uir(160, a=3, k=3, e=4),
     uir(160, a=3, k=5, e=4), mqa(160, 4, 64, kv_stride=2), uir(160, a=3, k=3, e=4),
     mqa(160, 4, 64, kv_stride=2), uir(160, a=3, k=0, e=4), mqa(160, 4, 64, kv_stride=2),
     uir(160, a=3, k=3, e=4), mqa(160, 4, 64, kv_stride=2), uir(160, a=3, k=0, e=4)),
    (uir(256, a=5, k=5, s=2, e=6), uir(256, a=5, k=5, e=4), uir(256, a=3, k=5, e=4, r=2),
     uir(256, a=0, k=0, e=2), uir(256, a=3, k=5, e=2), uir(256, a=0, k=0, e=2),
     uir(256, a=0, k=0, e=4), mqa(256, 4, 64), uir(256, a=3, k=0, e=4), mqa(256, 4, 64),
     uir(256, a=5, k=5, e=4), mqa(256, 4, 64), uir(256, a=5, k=0, e=4), mqa(256, 4, 64),
     uir(256, a=5, k=0, e=4)),
    (cn(960, k=1),),
)
HYBRID_LARGE = (
    (er(48, k=3, s=2, e=4),),
    (uir(96, a=3, k=5, s=2, e=4), uir(96, a=3, k=3, e=4)),
    (uir(192, a=3, k=5, s=2, e=4), uir(192, a=3, k=3, e=4, r=3), uir(192, a=3, k=5, e=4),
     uir(192, a=5, k=3, e=4, r=2), mqa(192, 8, 48, kv_stride=2), uir(192, a=5, k=3, e=4),
     mqa(192, 8, 48, kv_stride=2), uir(192, a=5, k=3, e=4), mqa(192, 8, 48, kv_stride=2),
     uir(192, a=5, k=3, e=4), mqa(192, 8, 48, kv_stride=2), uir(192, a=3, k=0, e=4)),
    (uir(512, a=5, k=5, s=2, e=4, r=4), uir(512, a=5, k=0, e=4), uir(512, a=5, k=3, e=4),
     uir(512, a=5, k=0, e=4, r=2), uir(512, a=5, k=3, e=4), uir(512, a=5, k=5, e=4),
     mqa(512, 8, 64), uir(512, a=5, k=0, e=4), mqa(512, 8, 64), uir(512, a=5, k=0, e=4),
     mqa(512, 8, 64), uir(512, a=5, k=0, e=4), mqa(512, 8, 64), uir(512, a=5, k=0, e=4)),
    (cn(960, k=1),),
)

VARIANTS = {
    "MobileNetV4ConvS": dict(timm_name="mobilenetv4_conv_small", stages=CONV_SMALL, stem=32, act="relu"),
    "MobileNetV4ConvM": dict(timm_name="mobilenetv4_conv_medium", stages=CONV_MEDIUM, stem=32, act="relu"),
    "MobileNetV4ConvL": dict(timm_name="mobilenetv4_conv_large", stages=CONV_LARGE, stem=24, act="relu"),
    "MobileNetV4HybridM": dict(timm_name="mobilenetv4_hybrid_medium", stages=HYBRID_MEDIUM, stem=32,
                               act="relu", layer_scale=1e-5, attention=True),
    "MobileNetV4HybridL": dict(timm_name="mobilenetv4_hybrid_large", stages=HYBRID_LARGE, stem=24,
                               act="gelu", layer_scale=1e-5, attention=True),
}


def mobilenetv4_spec(variant, attention="mqa"):
    """attention="mha" swaps Mobile MQA for plain multi-head attention (ablation; no timm weights)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown MobileNetV4 variant {variant!r}; known: {sorted(VARIANTS)}")
    if attention not in ("mqa", "mha"):
        raise ValueError(f"attention must be 'mqa' or 'mha', got {attention!r}")
    cfg = dict(VARIANTS[variant])
    if attention == "mha":
        from dataclasses import replace
        cfg["stages"] = tuple(tuple(replace(b, type="mha") if b.type == "mqa" else b for b in st)
                              for st in cfg["stages"])
        cfg["timm_name"] = cfg["timm_name"] + "_mha"
    stem = (BlockSpec("conv_stem", cfg.pop("stem"), stride=2, kernel=3),)
    return ModelSpec(name=variant, stem=stem, num_features=1280, head_bias=False, head_norm=True, **cfg)


def _constructor(variant, example_tag, size):
    timm_name = VARIANTS[variant]["timm_name"]
    return define_constructor(
        variant, family="mobilenetv4", timm_name=timm_name,
        make_spec=lambda weights, attention: mobilenetv4_spec(variant, attention),
        summary=(f"Instantiates {variant} (Qin et al., 2024, 'MobileNetV4: Universal Models "
                 f"for the Mobile Ecosystem'); timm `{timm_name}`."),
        example_tag=example_tag, size=size, extra_args={"attention": "mqa"},
        extra_doc='        attention: "mqa" (Mobile MQA, default) or "mha" (plain multi-head attention; '
                  'an ablation without timm weights).')


MobileNetV4ConvS = _constructor("MobileNetV4ConvS", "e3600_r256_in1k", 224)
MobileNetV4ConvM = _constructor("MobileNetV4ConvM", "e500_r224_in1k", 256)
MobileNetV4ConvL = _constructor("MobileNetV4ConvL", "e500_r256_in1k", 384)
MobileNetV4HybridM = _constructor("MobileNetV4HybridM", "e500_r224_in1k", 256)
MobileNetV4HybridL = _constructor("MobileNetV4HybridL", "e600_r384_in1k", 384)

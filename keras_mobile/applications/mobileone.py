"""MobileOne S0-S4 (Vasu et al., 2023, 'MobileOne: An Improved One millisecond Mobile Backbone').

Each stage repeats a `mobileone` row: a depthwise 3x3 MobileOne block then a pointwise 1x1
one (timm numbers them as two modules); the first pair of a stage has stride 2. Widths
(64, 128, 256, 512 x the variant's width factors), depths (2, 8, 10, 1), branch counts and SE
placement follow timm `mobileone_s*`. Build the train-time model, fine-tune, then
`keras_mobile.reparameterize` for deployment (one conv per block).
"""
from keras_mobile.applications.blocks import BlockSpec
from keras_mobile.applications.builder import ModelSpec, define_constructor


def mo(out, r, s=2, branches=1, se=False):
    """`r` (dw, pw) pairs of width `out`; se: squeeze-excite (timm rd_ratio 1/16) in both."""
    return BlockSpec("mobileone", out, s, repeat=r, branches=branches, se=1 / 16 if se else 0.0)


def stem(out):
    return (BlockSpec("mobileone_stem", out, stride=2, kernel=3),)


VARIANTS = {  # constructor: (timm name, stem rows, stages)
    "MobileOneS0": ("mobileone_s0", stem(48), ((mo(48, 2, branches=4),), (mo(128, 8, branches=4),),
                                               (mo(256, 10, branches=4),), (mo(1024, 1, branches=4),))),
    "MobileOneS1": ("mobileone_s1", stem(64), ((mo(96, 2),), (mo(192, 8),), (mo(512, 10),), (mo(1280, 1),))),
    "MobileOneS2": ("mobileone_s2", stem(64), ((mo(96, 2),), (mo(256, 8),), (mo(640, 10),), (mo(2048, 1),))),
    "MobileOneS3": ("mobileone_s3", stem(64), ((mo(128, 2),), (mo(320, 8),), (mo(768, 10),), (mo(2048, 1),))),
    "MobileOneS4": ("mobileone_s4", stem(64), ((mo(192, 2),), (mo(448, 8),),
                                               (mo(896, 5), mo(896, 5, s=1, se=True)), (mo(2048, 1, se=True),))),
}


def mobileone_spec(variant, weights=None, inference_mode=False):
    if variant not in VARIANTS:
        raise ValueError(f"unknown MobileOne variant {variant!r}; known: {sorted(VARIANTS)}")
    if inference_mode and weights is not None and not str(weights).endswith((".safetensors", ".h5")):
        raise ValueError("published MobileOne checkpoints are train-time (multi-branch): build with "
                         "inference_mode=False and call keras_mobile.reparameterize(model)")
    timm_name, stem_rows, stages = VARIANTS[variant]
    return ModelSpec(name=variant, timm_name=timm_name + ("_reparam" if inference_mode else ""),
                     stem=stem_rows, stages=stages, block_path="stages.{stage}.{index}", top="mobileone",
                     inference_mode=inference_mode)


def _constructor(variant):
    timm_name = VARIANTS[variant][0]
    return define_constructor(
        variant, family="mobileone", timm_name=timm_name,
        make_spec=lambda weights, inference_mode: mobileone_spec(variant, weights, inference_mode),
        summary=f"Instantiates {variant} (timm `{timm_name}`), train-time multi-branch form.",
        example_tag="apple_in1k", size=224, extra_args={"inference_mode": False},
        extra_doc="        inference_mode: build the fused (one conv per block) form directly.")


MobileOneS0 = _constructor("MobileOneS0")
MobileOneS1 = _constructor("MobileOneS1")
MobileOneS2 = _constructor("MobileOneS2")
MobileOneS3 = _constructor("MobileOneS3")
MobileOneS4 = _constructor("MobileOneS4")

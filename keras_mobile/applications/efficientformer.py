"""EfficientFormer L1/L3/L7 (Li et al., 2022, 'EfficientFormer: Vision Transformers at MobileNet
Speed'), timm-exact.

Stem (two 3x3/s2 conv+BN+ReLU), four stages of Meta4D blocks with conv+BN downsampling, and the
last blocks of the last stage as Meta3D (attention) after flattening the 7x7 map to tokens
(timm's `Flat` takes a module index). Two heads (class and distillation) on the token mean;
inference output is their average, as in the paper and timm. The attention biases are learned
for the 7x7 grid, so the input must be 224x224.
"""
from keras_mobile.applications.blocks import BlockSpec
from keras_mobile.applications.builder import ModelSpec, define_constructor


def stem(width):
    return (BlockSpec("ef_stem", width // 2, stride=2), BlockSpec("ef_stem", width, stride=2))


def down(out):
    return BlockSpec("downsample", out, stride=2)


def m4(r, e=4.0):
    return BlockSpec("meta4d", expand=e, repeat=r)


def m3(r, e=4.0):
    return BlockSpec("meta3d", expand=e, repeat=r)


FLAT, NORM = BlockSpec("flat"), BlockSpec("token_norm")

VARIANTS = {  # constructor: (timm name, stem rows, stages)
    "EfficientFormerL1": ("efficientformer_l1", stem(48), (
        (m4(3),), (down(96), m4(2)), (down(224), m4(6)), (down(448), m4(3), FLAT, m3(1), NORM))),
    "EfficientFormerL3": ("efficientformer_l3", stem(64), (
        (m4(4),), (down(128), m4(4)), (down(320), m4(12)), (down(512), m4(2), FLAT, m3(4), NORM))),
    "EfficientFormerL7": ("efficientformer_l7", stem(96), (
        (m4(6),), (down(192), m4(6)), (down(384), m4(18)), (down(768), FLAT, m3(8), NORM))),
}


def efficientformer_spec(variant):
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientFormer variant {variant!r}; known: {sorted(VARIANTS)}")
    timm_name, stem_rows, stages = VARIANTS[variant]
    return ModelSpec(name=variant, timm_name=timm_name, stem=stem_rows, stages=stages,
                     block_path="stages.{stage}.blocks.{index}", top="efficientformer",
                     attention=True, fixed_size=224)


def _constructor(variant):
    timm_name = VARIANTS[variant][0]
    return define_constructor(
        variant, family="efficientformer", timm_name=timm_name,
        make_spec=lambda weights: efficientformer_spec(variant),
        summary=f"Instantiates {variant} (timm `{timm_name}`); 224x224 inputs only.",
        example_tag="snap_dist_in1k", size=224)


EfficientFormerL1 = _constructor("EfficientFormerL1")
EfficientFormerL3 = _constructor("EfficientFormerL3")
EfficientFormerL7 = _constructor("EfficientFormerL7")

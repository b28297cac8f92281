"""MobileOne S0-S4 (Vasu et al., 2023, 'MobileOne: An Improved One millisecond Mobile Backbone').

Each stage repeats (depthwise 3x3 MobileOne block, pointwise 1x1 MobileOne block); the first
depthwise block of a stage has stride 2. Widths, depths, branch counts and SE placement follow
timm `mobileone_s*`. Build the train-time model, fine-tune, then `keras_mobile.reparameterize`
for deployment (one conv per block).
"""
from dataclasses import dataclass

import keras

from keras_mobile.applications.block_spec import make_divisible
from keras_mobile.applications.builder import ModelSpec, define_constructor
from keras_mobile.layers.mobileone_block import MobileOneBlock
from keras_mobile.layers.naming import to_layer_name

BASE_WIDTHS = (64, 128, 256, 512)
DEPTHS = (2, 8, 10, 1)


@dataclass(frozen=True)
class MobileOneConfig:
    width_factors: tuple
    num_conv_branches: int = 1
    se_blocks: tuple = (0, 0, 0, 0)   # the last n (dw, pw) pairs of each stage get SE
    stem: int = 64


VARIANTS = {
    "MobileOneS0": ("mobileone_s0", MobileOneConfig((0.75, 1.0, 1.0, 2.0), num_conv_branches=4, stem=48)),
    "MobileOneS1": ("mobileone_s1", MobileOneConfig((1.5, 1.5, 2.0, 2.5))),
    "MobileOneS2": ("mobileone_s2", MobileOneConfig((1.5, 2.0, 2.5, 4.0))),
    "MobileOneS3": ("mobileone_s3", MobileOneConfig((2.0, 2.5, 3.0, 4.0))),
    "MobileOneS4": ("mobileone_s4", MobileOneConfig((3.0, 3.5, 3.5, 4.0), se_blocks=(0, 0, 5, 1))),
}


def _se_channels(channels):
    """timm SEModule: rd_ratio 1/16, divisor 8, no round-down limit."""
    return make_divisible(channels / 16, 8, round_limit=0.0)


def mobileone_trunk(x, spec, drop_path_rate=0.0, output_stride=32):
    cfg, inference_mode = spec.extra["config"], spec.extra.get("inference_mode", False)
    x = MobileOneBlock(cfg.stem, 3, 2, num_conv_branches=1, inference_mode=inference_mode, name="stem")(x)
    prev = min(64, int(BASE_WIDTHS[0] * cfg.width_factors[0]))
    stride, j = 2, 0
    for si, (depth, base, wf, n_se) in enumerate(zip(DEPTHS, BASE_WIDTHS, cfg.width_factors, cfg.se_blocks)):
        out = make_divisible(base * wf)
        j = 0
        for i in range(depth):
            s = 2 if i == 0 else 1
            if s > 1 and stride * s > output_stride:
                s = 1   # MobileOne has no dilation path; keep resolution (segmentation use)
            stride *= s
            se = i >= depth - n_se
            x = MobileOneBlock(prev, 3, s, depthwise=True, num_conv_branches=cfg.num_conv_branches,
                               se_channels=_se_channels(prev) if se else 0, inference_mode=inference_mode,
                               name=to_layer_name(f"stages.{si}.{j}"))(x)
            x = MobileOneBlock(out, 1, 1, num_conv_branches=cfg.num_conv_branches,
                               se_channels=_se_channels(out) if se else 0, inference_mode=inference_mode,
                               name=to_layer_name(f"stages.{si}.{j + 1}"))(x)
            prev, j = out, j + 2
    return x


def mobileone_head(x, spec, classes, classifier_activation, dropout_rate):
    x = keras.layers.GlobalAveragePooling2D(name=to_layer_name("head.global_pool"))(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=to_layer_name("head.drop"))(x)
    return keras.layers.Dense(classes, activation=classifier_activation, name=to_layer_name("head.fc"))(x)


def _mobileone_spec(variant, weights, inference_mode):
    if inference_mode and weights is not None and not str(weights).endswith((".safetensors", ".h5")):
        raise ValueError("published MobileOne checkpoints are train-time (multi-branch): build with "
                         "inference_mode=False and call keras_mobile.reparameterize(model)")
    timm_name, cfg = VARIANTS[variant]
    return ModelSpec(name=variant, timm_name=timm_name + ("_reparam" if inference_mode else ""),
                     extra={"config": cfg, "inference_mode": inference_mode})


def _constructor(variant):
    timm_name = VARIANTS[variant][0]
    return define_constructor(
        variant, family="mobileone", timm_name=timm_name,
        make_spec=lambda weights, inference_mode: _mobileone_spec(variant, weights, inference_mode),
        summary=f"Instantiates {variant} (timm `{timm_name}`), train-time multi-branch form.",
        example_tag="apple_in1k", size=224, trunk_fn=mobileone_trunk, head_fn=mobileone_head,
        extra_args={"inference_mode": False},
        extra_doc="        inference_mode: build the fused (one conv per block) form directly.")


MobileOneS0 = _constructor("MobileOneS0")
MobileOneS1 = _constructor("MobileOneS1")
MobileOneS2 = _constructor("MobileOneS2")
MobileOneS3 = _constructor("MobileOneS3")
MobileOneS4 = _constructor("MobileOneS4")

"""EfficientFormer L1/L3/L7 (Li et al., 2022, 'EfficientFormer: Vision Transformers at MobileNet
Speed'), timm-exact.

Stem (two 3x3/s2 conv+BN+ReLU), four stages of Meta4D blocks with conv+BN downsampling, and the
last `num_vit` blocks of the last stage as Meta3D (attention) after flattening the 7x7 map to
tokens. Two heads (class and distillation) on the token mean; inference output is their
average, as in the paper and timm. The attention biases are learned for the 7x7 grid, so the
input must be 224x224.
"""
import keras

from keras_mobile.applications.builder import ModelSpec, define_constructor
from keras_mobile.layers.conv_bn_act import conv_bn_act
from keras_mobile.layers.meta_blocks import meta_block_3d, meta_block_4d
from keras_mobile.layers.naming import to_layer_name

VARIANTS = {  # constructor: (timm name, widths, depths, num_vit)
    "EfficientFormerL1": ("efficientformer_l1", (48, 96, 224, 448), (3, 2, 6, 4), 1),
    "EfficientFormerL3": ("efficientformer_l3", (64, 128, 320, 512), (4, 4, 12, 6), 4),
    "EfficientFormerL7": ("efficientformer_l7", (96, 192, 384, 768), (6, 6, 18, 8), 8),
}


def efficientformer_trunk(x, spec, drop_path_rate=0.0, output_stride=32):
    if output_stride != 32:
        raise ValueError("EfficientFormer supports output_stride=32 only")
    widths, depths, num_vit = spec.extra["widths"], spec.extra["depths"], spec.extra["num_vit"]
    x = conv_bn_act(x, widths[0] // 2, 3, 2, act="relu", use_bias=True, conv_name=to_layer_name("stem.conv1"),
                    bn_name=to_layer_name("stem.norm1"), act_name=to_layer_name("stem.act1"))
    x = conv_bn_act(x, widths[0], 3, 2, act="relu", use_bias=True, conv_name=to_layer_name("stem.conv2"),
                    bn_name=to_layer_name("stem.norm2"), act_name=to_layer_name("stem.act2"))
    total, index = sum(depths), 0
    for si, (dim, depth) in enumerate(zip(widths, depths)):
        if si > 0:
            x = conv_bn_act(x, dim, 3, 2, act=None, use_bias=True,
                            conv_name=to_layer_name(f"stages.{si}.downsample.conv"),
                            bn_name=to_layer_name(f"stages.{si}.downsample.norm"))
        vit = num_vit if si == len(widths) - 1 else 0
        bi = 0
        for b in range(depth):
            dpr = drop_path_rate * index / total
            name = to_layer_name(f"stages.{si}.blocks.{bi}")
            if b >= depth - vit:
                if len(x.shape) == 4:    # timm's Flat module takes an index in the block list
                    grid = x.shape[1]
                    x = keras.layers.Reshape((grid * x.shape[2], dim), name=name)(x)
                    bi += 1
                    name = to_layer_name(f"stages.{si}.blocks.{bi}")
                x = meta_block_3d(x, resolution=grid, drop_path_rate=dpr, name=name)
            else:
                x = meta_block_4d(x, drop_path_rate=dpr, name=name)
            bi += 1
            index += 1
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")(x)
    size = spec.fixed_size // 32
    return keras.layers.Reshape((size, size, widths[-1]), name="tokens_to_map")(x)


def efficientformer_head(x, spec, classes, classifier_activation, dropout_rate):
    """Token mean -> class head and distillation head, averaged (timm eval output)."""
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="head_drop")(x)
    logits = keras.layers.Average(name="head_average")([keras.layers.Dense(classes, name="head")(x),
                                                        keras.layers.Dense(classes, name="head_dist")(x)])
    if classifier_activation is None:
        return logits
    return keras.layers.Activation(classifier_activation, name="predictions")(logits)


def _constructor(variant):
    timm_name, widths, depths, num_vit = VARIANTS[variant]
    spec = ModelSpec(name=variant, timm_name=timm_name, attention=True, fixed_size=224,
                     extra={"widths": widths, "depths": depths, "num_vit": num_vit})
    return define_constructor(
        variant, family="efficientformer", timm_name=timm_name, make_spec=lambda weights: spec,
        summary=f"Instantiates {variant} (timm `{timm_name}`); 224x224 inputs only.",
        example_tag="snap_dist_in1k", size=224,
        trunk_fn=efficientformer_trunk, head_fn=efficientformer_head)


EfficientFormerL1 = _constructor("EfficientFormerL1")
EfficientFormerL3 = _constructor("EfficientFormerL3")
EfficientFormerL7 = _constructor("EfficientFormerL7")

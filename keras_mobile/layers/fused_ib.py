"""Fused inverted bottleneck (timm `EdgeResidual`, MobileNetV4 "FusedIB"):
a full kxk expansion conv replaces the pw-expand + depthwise pair; better on accelerators
for early, high-resolution stages."""
from keras_mobile.layers.conv_bn_act import conv_bn_act
from keras_mobile.layers.stochastic_depth import residual_add
from keras_mobile.layers.naming import child


def fused_inverted_bottleneck(x, out_channels, mid_channels, kernel_size=3, strides=1,
                              act="relu", noskip=False, bn_eps=1e-5, padding="torch",
                              drop_path_rate=0.0, dilation=1, name="block"):
    shortcut = x
    in_channels = x.shape[-1]
    x = conv_bn_act(x, mid_channels, kernel_size, strides, dilation, act=act, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "conv_exp"), bn_name=child(name, "bn1"), act_name=child(name, "act1"))
    x = conv_bn_act(x, out_channels, 1, act=None, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "conv_pwl"), bn_name=child(name, "bn2"))
    if strides == 1 and in_channels == out_channels and not noskip:
        x = residual_add(x, shortcut, drop_path_rate, name)
    return x

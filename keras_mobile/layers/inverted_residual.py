"""MobileNetV2/V3 blocks: depthwise-separable (`ds`) and inverted residual (`ir`, optional SE).

Sub-layer names follow timm (`conv_pw`, `bn1`, `conv_dw`, `bn2`, `se`, `conv_pwl`, `bn3`) so
checkpoints map by name.
"""
from keras_mobile.layers.conv_bn_act import conv_bn_act
from keras_mobile.layers.squeeze_excite import squeeze_excite
from keras_mobile.layers.stochastic_depth import residual_add
from keras_mobile.layers.naming import child


def depthwise_separable(x, out_channels, kernel_size=3, strides=1, act="relu", se_channels=0,
                        se_act="relu", se_gate="hard_sigmoid", noskip=False, bn_eps=1e-5,
                        padding="torch", drop_path_rate=0.0, dilation=1, name="block"):
    """dw kxk -> BN -> act -> [SE] -> pw 1x1 -> BN (+ skip)."""
    shortcut = x
    in_channels = x.shape[-1]
    x = conv_bn_act(x, in_channels, kernel_size, strides, dilation, depthwise=True, act=act, bn_eps=bn_eps,
                    padding=padding, conv_name=child(name, "conv_dw"), bn_name=child(name, "bn1"),
                    act_name=child(name, "act1"))
    if se_channels:
        x = squeeze_excite(x, se_channels, se_act, se_gate, name=child(name, "se"))
    x = conv_bn_act(x, out_channels, 1, act=None, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "conv_pw"), bn_name=child(name, "bn2"))
    if strides == 1 and in_channels == out_channels and not noskip:
        x = residual_add(x, shortcut, drop_path_rate, name)
    return x


def inverted_residual(x, out_channels, mid_channels, kernel_size=3, strides=1, act="relu",
                      se_channels=0, se_act="relu", se_gate="hard_sigmoid", noskip=False,
                      bn_eps=1e-5, padding="torch", drop_path_rate=0.0, dilation=1, name="block"):
    """pw expand -> BN -> act -> dw kxk -> BN -> act -> [SE] -> pw project -> BN (+ skip)."""
    shortcut = x
    in_channels = x.shape[-1]
    x = conv_bn_act(x, mid_channels, 1, act=act, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "conv_pw"), bn_name=child(name, "bn1"), act_name=child(name, "act1"))
    x = conv_bn_act(x, mid_channels, kernel_size, strides, dilation, depthwise=True, act=act, bn_eps=bn_eps,
                    padding=padding, conv_name=child(name, "conv_dw"), bn_name=child(name, "bn2"),
                    act_name=child(name, "act2"))
    if se_channels:
        x = squeeze_excite(x, se_channels, se_act, se_gate, name=child(name, "se"))
    x = conv_bn_act(x, out_channels, 1, act=None, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "conv_pwl"), bn_name=child(name, "bn3"))
    if strides == 1 and in_channels == out_channels and not noskip:
        x = residual_add(x, shortcut, drop_path_rate, name)
    return x

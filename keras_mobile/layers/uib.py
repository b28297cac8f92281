"""Universal Inverted Bottleneck (MobileNetV4).

Two optional depthwise convs around the pointwise expansion select one of four blocks:

| start dw | mid dw | block               |
|----------|--------|---------------------|
| no       | yes    | IB (MobileNetV2)    |
| yes      | no     | ConvNext-like       |
| yes      | yes    | ExtraDW             |
| no       | no     | FFN                 |

Stride goes on the mid dw if present, else on the start dw (timm `UniversalInvertedResidual`).
"""
from keras_mobile.layers.conv_bn_act import conv_bn_act
from keras_mobile.layers.layer_scale import LayerScale
from keras_mobile.layers.stochastic_depth import residual_add
from keras_mobile.layers.naming import child


def universal_inverted_bottleneck(x, out_channels, mid_channels, start_kernel=0, mid_kernel=3,
                                  strides=1, act="relu", layer_scale=None, noskip=False,
                                  bn_eps=1e-5, padding="torch", drop_path_rate=0.0, dilation=1, name="block"):
    if strides > 1 and not (start_kernel or mid_kernel):
        raise ValueError(f"{name}: a strided UIB needs a start or mid depthwise conv")
    shortcut = x
    in_channels = x.shape[-1]
    if start_kernel:
        x = conv_bn_act(x, in_channels, start_kernel, 1 if mid_kernel else strides, dilation, depthwise=True,
                        act=None, bn_eps=bn_eps, padding=padding,
                        conv_name=child(name, "dw_start.conv"), bn_name=child(name, "dw_start.bn"))
    x = conv_bn_act(x, mid_channels, 1, act=act, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "pw_exp.conv"), bn_name=child(name, "pw_exp.bn"),
                    act_name=child(name, "pw_exp.act"))
    if mid_kernel:
        x = conv_bn_act(x, mid_channels, mid_kernel, strides, dilation, depthwise=True, act=act,
                        bn_eps=bn_eps, padding=padding, conv_name=child(name, "dw_mid.conv"),
                        bn_name=child(name, "dw_mid.bn"), act_name=child(name, "dw_mid.act"))
    x = conv_bn_act(x, out_channels, 1, act=None, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "pw_proj.conv"), bn_name=child(name, "pw_proj.bn"))
    if layer_scale is not None:
        x = LayerScale(layer_scale, name=child(name, "layer_scale"))(x)
    if strides == 1 and in_channels == out_channels and not noskip:
        x = residual_add(x, shortcut, drop_path_rate, name)
    return x

"""Plain conv -> BN -> act block (timm `ConvBnAct`, block type `cn`)."""
from keras_mobile.layers.conv_bn_act import conv_bn_act
from keras_mobile.layers.stochastic_depth import residual_add
from keras_mobile.layers.naming import child


def conv_block(x, out_channels, kernel_size=1, strides=1, act="relu", skip=False, bn_eps=1e-5,
               padding="torch", drop_path_rate=0.0, dilation=1, name="block"):
    shortcut = x
    x = conv_bn_act(x, out_channels, kernel_size, strides, dilation, act=act, bn_eps=bn_eps, padding=padding,
                    conv_name=child(name, "conv"), bn_name=child(name, "bn1"), act_name=child(name, "act"))
    if skip and strides == 1 and shortcut.shape[-1] == out_channels:
        x = residual_add(x, shortcut, drop_path_rate, name)
    return x

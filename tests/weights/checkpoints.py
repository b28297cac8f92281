"""Builds timm-format checkpoints from Keras models (the inverse of weights/convert.py), so
weight-loading tests need neither torch nor the network."""
import os

import keras
import numpy as np
from safetensors.numpy import save

import keras_mobile
from keras_mobile.weights import cache, registry
from keras_mobile.graph import leaf_layers
from keras_mobile.weights.assign import timm_keys

ARCH = "mobilenetv3_small_100"
INFO = registry.resolve(ARCH, "imagenet")
SHAPE = (96, 96, 3)  # weights do not depend on the input size; small = fast


def build(weights, **kw):
    return keras_mobile.MobileNetV3Small(weights=weights, input_shape=SHAPE, classifier_activation=None, **kw)


def cache_entries():
    """Files of the converted cache (the .locks folder aside)."""
    d = cache.cache_dir()
    return sorted(n for n in os.listdir(d) if n != ".locks") if os.path.isdir(d) else []


def same_outputs(a, b):
    """Max |difference| of two models' outputs on a fixed random batch."""
    x = np.random.default_rng(0).uniform(0, 255, (2,) + SHAPE).astype("float32")
    return np.abs(np.asarray(a(x)) - np.asarray(b(x))).max()


def to_timm_layout(key, array, depthwise=False):
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 4:
        if depthwise:                                              # [k,k,C,1] -> [C,1,k,k]
            return a.transpose(2, 3, 0, 1).copy()
        return a.transpose(3, 2, 0, 1).copy()                     # HWIO -> OIHW
    if a.ndim == 2 and key.endswith(".weight"):
        return a.T.copy()
    return a


def timm_checkpoint_bytes(model, seed=0):
    """Randomises every variable (so a wrong mapping cannot pass), returns safetensors bytes."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in leaf_layers(model):
        for var, key in timm_keys(layer):
            value = rng.normal(0, 0.1, var.shape).astype(np.float32)
            if "moving_variance" in var.path:
                value = rng.uniform(0.5, 1.5, var.shape).astype(np.float32)
            var.assign(value)
            tensors[key] = to_timm_layout(key, value, isinstance(layer, keras.layers.DepthwiseConv2D))
    return save(tensors)

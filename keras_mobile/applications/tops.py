"""Classification tops (pooling -> ... -> class logits) of the four families, by name.

Each top names the Dense layer(s) that hold the classes (timm module paths): the model
registry lists them per model, fine-tuning replaces exactly those.
"""
from dataclasses import dataclass
from typing import Callable

import keras

from keras_mobile import layers as L
from keras_mobile.layers.naming import to_layer_name


@dataclass(frozen=True)
class Top:
    build: Callable          # build(x, spec, classes, classifier_activation, dropout_rate) -> tensor
    classifier: tuple        # timm module paths of the Dense layer(s) producing the class logits
    doc: str


def _mobilenet(x, spec, classes, classifier_activation, dropout_rate):
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(x)
    x = keras.layers.Conv2D(spec.num_features, 1, use_bias=spec.head_bias and not spec.head_norm,
                            name="conv_head")(x)
    if spec.head_norm:
        x = keras.layers.BatchNormalization(epsilon=spec.bn_eps, momentum=0.9, name="norm_head")(x)
    x = L.get_activation(spec.act, "act2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    return keras.layers.Dense(classes, activation=classifier_activation, name="classifier")(x)


def _mobileone(x, spec, classes, classifier_activation, dropout_rate):
    x = keras.layers.GlobalAveragePooling2D(name=to_layer_name("head.global_pool"))(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name=to_layer_name("head.drop"))(x)
    return keras.layers.Dense(classes, activation=classifier_activation, name=to_layer_name("head.fc"))(x)


def _efficientformer(x, spec, classes, classifier_activation, dropout_rate):
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="head_drop")(x)
    logits = keras.layers.Average(name="head_average")([keras.layers.Dense(classes, name="head")(x),
                                                        keras.layers.Dense(classes, name="head_dist")(x)])
    if classifier_activation is None:
        return logits
    return keras.layers.Activation(classifier_activation, name="predictions")(logits)


TOPS = {
    "mobilenet": Top(_mobilenet, ("classifier",),
                     "timm MobileNetV3 'efficient head': pool -> 1x1 conv (+BN) -> act -> classifier"),
    "mobileone": Top(_mobileone, ("head.fc",), "pool -> classifier (`head.fc`)"),
    "efficientformer": Top(_efficientformer, ("head", "head_dist"),
                           "token mean -> class head and distillation head, averaged (timm eval output)"),
}

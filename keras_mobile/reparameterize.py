"""`reparameterize(model)`: the inference form of any model holding reparameterisable blocks.

Rebuilds the functional graph (recursively, so a backbone nested in a detector is covered)
with every train-time block replaced by its fused form, and copies all other weights over.
"""
import keras

from keras_mobile import graph
from keras_mobile.layers.mobileone_block import MobileOneBlock


def _is_train_time(layer):
    return isinstance(layer, MobileOneBlock) and not layer.inference_mode


def needs_reparameterization(model):
    """True when `model` (or a model nested in it) holds a train-time block `reparameterize` fuses."""
    return any(_is_train_time(layer) for layer in graph.all_layers(model))


def reparameterize(model):
    """Returns a new model whose MobileOne blocks are single conv+bias(+SE)+ReLU layers; outputs
    equal the original's (eval mode) to float rounding. The original model is not modified."""
    def clone(layer):
        if _is_train_time(layer):
            return layer.fused()
        return layer.__class__.from_config(layer.get_config())

    fused = keras.models.clone_model(model, clone_function=clone, recursive=True)
    _copy_weights(model, fused)
    return fused


def _copy_weights(src, dst):
    for a, b in zip(graph.leaf_layers(src), graph.leaf_layers(dst)):   # the clone has the same structure
        if a.weights and not _is_train_time(a):        # `fused()` already holds the folded weights
            b.set_weights(a.get_weights())

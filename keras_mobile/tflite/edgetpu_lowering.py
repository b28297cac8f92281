"""EdgeTPU-friendly rewrites of a Keras graph, used by `export(..., target="edgetpu")`.

The Edge TPU compiler maps a graph up to its first unsupported op and runs the rest on the
CPU. TFLite's HARD_SWISH is not in the published EdgeTPU op list, and the converter pattern-
matches x * relu6(x + 3) / 6 (and x * (relu6(x + 3) / 6)) back into HARD_SWISH. Written as
(x / 6) * relu6(x + 3) it lowers to MUL, ADD (fused RELU6) and MUL, which the Edge TPU runs:
the same function, so outputs are unchanged up to float rounding.
"""
import keras
from keras import ops

HARD_SWISH_NAMES = ("hard_silu", "hard_swish")


@keras.saving.register_keras_serializable(package="keras_mobile")
def hard_swish_edgetpu(x):
    """x * relu6(x + 3) / 6 in an order the TFLite converter does not fuse into HARD_SWISH."""
    return (x * (1.0 / 6.0)) * ops.relu6(x + 3.0)


def _activation_name(layer):
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None)


def edgetpu_friendly(model):
    """Returns (model, changes): a clone sharing `model`'s weights in which ops the Edge TPU lacks
    are rewritten into supported ones (today: hard-swish -> MUL/ADD+RELU6/MUL), and a list of
    human-readable change notes (empty when nothing needed rewriting: `model` is returned)."""
    targets = [layer for layer in _all_layers(model)
               if isinstance(layer, keras.layers.Activation) and _activation_name(layer) in HARD_SWISH_NAMES]
    if not targets:
        return model, []
    ids = {id(layer) for layer in targets}

    def clone(layer):
        if id(layer) in ids:
            return keras.layers.Activation(hard_swish_edgetpu, name=layer.name, dtype=layer.dtype_policy)
        return layer          # reuse: weights stay shared with the original model

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    return new, [f"hard-swish x{len(targets)} -> (x/6)*relu6(x+3) (MUL, ADD+RELU6, MUL; HARD_SWISH is not "
                 f"an Edge TPU op)"]


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer

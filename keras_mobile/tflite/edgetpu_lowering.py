"""EdgeTPU-friendly rewrites of a Keras graph, used by `export(..., target="edgetpu")`.

The Edge TPU compiler maps a graph up to its first unsupported op and runs the rest on the
CPU. TFLite's HARD_SWISH is not in the published EdgeTPU op list, and the converter pattern-
matches x * relu6(x + 3) / 6 (and x * (relu6(x + 3) / 6)) back into HARD_SWISH. Written as
(x / 6) * relu6(x + 3) it lowers to MUL, ADD (fused RELU6) and MUL, which the Edge TPU runs:
the same function, so outputs are unchanged up to float rounding.

GELU (EfficientFormer) has no Edge TPU kernel either; it becomes x * sigmoid(1.702 x) (MUL,
LOGISTIC, MUL), an approximation within 0.021 of the erf GELU everywhere: below one int8 step
of a typical GELU input range, but not exact, so it is listed in the change notes.
"""
import keras
from keras import ops

HARD_SWISH_NAMES = ("hard_silu", "hard_swish")
GELU_NAMES = ("gelu", "_gelu_exact")


@keras.saving.register_keras_serializable(package="keras_mobile")
def hard_swish_edgetpu(x):
    """x * relu6(x + 3) / 6 in an order the TFLite converter does not fuse into HARD_SWISH."""
    return (x * (1.0 / 6.0)) * ops.relu6(x + 3.0)


@keras.saving.register_keras_serializable(package="keras_mobile")
def gelu_edgetpu(x):
    """Sigmoid approximation of GELU, x * sigmoid(1.702 x): ops the Edge TPU runs."""
    return x * ops.sigmoid(1.702 * x)


def _activation_name(layer):
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None)


def edgetpu_friendly(model, approximate_gelu=True):
    """Returns (model, changes): a clone sharing `model`'s weights in which ops the Edge TPU lacks
    are rewritten into supported ones (hard-swish -> MUL/ADD+RELU6/MUL, exact; GELU ->
    x * sigmoid(1.702 x), approximate, unless approximate_gelu=False), and a list of change
    notes (empty when nothing needed rewriting: `model` itself is returned)."""
    rewrites = {name: hard_swish_edgetpu for name in HARD_SWISH_NAMES}
    if approximate_gelu:
        rewrites.update({name: gelu_edgetpu for name in GELU_NAMES})
    targets = {id(layer): rewrites[_activation_name(layer)] for layer in _all_layers(model)
               if isinstance(layer, keras.layers.Activation) and _activation_name(layer) in rewrites}
    if not targets:
        return model, []

    def clone(layer):
        if id(layer) in targets:
            return keras.layers.Activation(targets[id(layer)], name=layer.name, dtype=layer.dtype_policy)
        return layer          # reuse: weights stay shared with the original model

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    counts = {fn: list(targets.values()).count(fn) for fn in (hard_swish_edgetpu, gelu_edgetpu)}
    changes = []
    if counts[hard_swish_edgetpu]:
        changes.append(f"hard-swish x{counts[hard_swish_edgetpu]} -> (x/6)*relu6(x+3) (MUL, ADD+RELU6, MUL; "
                       f"exact; HARD_SWISH is not an Edge TPU op)")
    if counts[gelu_edgetpu]:
        changes.append(f"GELU x{counts[gelu_edgetpu]} -> x*sigmoid(1.702x) (MUL, LOGISTIC, MUL; approximate, "
                       f"|error| <= 0.021; GELU is not an Edge TPU op)")
    return new, changes


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer

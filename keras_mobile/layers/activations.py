"""Activation lookup shared by every block.

Keras 3 `hard_sigmoid`/`hard_silu` are relu6(x + 3) / 6 (and x * that), identical to
torch.nn.Hardsigmoid/Hardswish; `gelu(approximate=False)` is the exact erf GELU timm uses.
"""
import keras

_ALIASES = {
    "hard_swish": "hard_silu",
    "hswish": "hard_silu",
    "swish": "silu",
    "gelu": "gelu_exact",
}


def get_activation(name, layer_name=None):
    """Returns a Keras layer for activation `name` (or None for None/"linear")."""
    if name is None or name == "linear":
        return None
    key = _ALIASES.get(name, name)
    if key == "gelu_exact":
        return keras.layers.Activation(_gelu_exact, name=layer_name)
    if key == "relu6":
        return keras.layers.ReLU(6.0, name=layer_name)
    if key == "relu":
        return keras.layers.ReLU(name=layer_name)
    return keras.layers.Activation(key, name=layer_name)


@keras.saving.register_keras_serializable(package="keras_mobile")
def _gelu_exact(x):
    return keras.activations.gelu(x, approximate=False)


def apply_activation(x, name, layer_name=None):
    layer = get_activation(name, layer_name)
    return x if layer is None else layer(x)

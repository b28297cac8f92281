"""Layer names that every Keras backend accepts, and the one rule mapping them to timm paths.

timm names a weight by its module path (`blocks.2.0.dw_mid.conv.weight`). Keras' torch backend
rejects "." in parameter names and Keras itself rejects "/", so a layer is named by its timm
module path with every "." replaced by SEP ("-"): `blocks-2-0-dw_mid-conv`. "-" never occurs in
a timm module path (module attribute names are Python identifiers or indices; checked against
every family's state_dict in tests/layers/test_naming.py), so the mapping is invertible, which
"." -> "_" would not be (`conv_stem`, `dw_mid`). TensorFlow name scopes, JAX and torch all
accept "-".
"""
SEP = "-"


def to_layer_name(timm_path):
    """`blocks.2.0.dw_mid.conv` -> `blocks-2-0-dw_mid-conv`."""
    if SEP in timm_path:
        raise ValueError(f"{timm_path!r} is not a timm module path (it contains {SEP!r})")
    return timm_path.replace(".", SEP)


def to_timm_path(layer_name):
    """`blocks-2-0-dw_mid-conv` -> `blocks.2.0.dw_mid.conv` (inverse of `to_layer_name`).

    Names of models saved before the rename (timm paths with dots) map to themselves."""
    return layer_name.replace(SEP, ".")


def child(name, timm_subpath):
    """Layer name of the submodule `timm_subpath` ("dw_mid.conv") of the layer named `name`;
    None when `name` is None (anonymous layers stay anonymous)."""
    if name is None:
        return None
    return f"{name}{SEP}{to_layer_name(str(timm_subpath))}"

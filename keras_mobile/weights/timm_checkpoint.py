"""timm-layout `.safetensors` files, both ways: read one (no code execution), write a model as one.

A written file loads back with `weights=path` (any classifier size through
`build_finetune_model`), and into timm's model of the same architecture
(`timm.create_model(arch, num_classes=N, pretrained=True, pretrained_cfg_overlay={"file": path})`).
"""
import os

from keras_mobile.weights.assign import timm_keys
from keras_mobile.weights.convert import to_timm_layout
from keras_mobile.weights.errors import WeightsError


def read_safetensors(path):
    """Reads a .safetensors file with no code execution; WeightsError naming the file otherwise."""
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except Exception as e:  # safetensors raises SafetensorError / OSError for truncated or bad headers
        size = os.path.getsize(path) if os.path.exists(path) else 0
        raise WeightsError(f"{path} is not a readable safetensors file ({size} bytes; corrupt or "
                           f"truncated?): {e}") from e


def timm_state_dict(model):
    """{timm key: numpy array in PyTorch layout} for every weight of a keras_mobile model."""
    from keras_mobile import graph
    keras_layout = {key: var.numpy() for layer in graph.leaf_layers(model) for var, key in timm_keys(layer)}
    if not keras_layout:
        raise ValueError(f"{model.name} has no weights with timm names (is it a keras_mobile model?)")
    return to_timm_layout(keras_layout)


def save_timm_checkpoint(model, path):
    """Writes `timm_state_dict(model)` to `path` (.safetensors, atomically). Returns the path."""
    from safetensors.numpy import save_file

    from keras_mobile.files import atomic_path
    if not str(path).endswith(".safetensors"):
        raise ValueError(f"path must end with .safetensors, got {path}")
    tensors = timm_state_dict(model)
    with atomic_path(path) as tmp:
        save_file(tensors, tmp)
    return path

"""Fine-tuned weights as a timm-layout `.safetensors` file.

The inverse of `keras_mobile.weights.convert.to_keras_layout`: Keras HWIO convs -> OIHW,
depthwise [k, k, C, 1] -> [C, 1, k, k], Dense [in, out] -> [out, in], keys = timm module paths.
The file loads back with `weights=path` (any classifier size through `build_finetune_model`),
and into timm's model of the same architecture (`timm.create_model(arch, num_classes=N,
pretrained=True, pretrained_cfg_overlay={"file": path})`).
"""

import numpy as np


def timm_state_dict(model):
    """{timm key: numpy array in PyTorch layout} for every weight of a keras_mobile model."""
    from keras_mobile.weights.assign import timm_keys
    out = {}
    for layer in _leaf_layers(model):
        for var, key in timm_keys(layer):
            t = np.asarray(var.numpy(), dtype=np.float32)
            if t.ndim == 4:
                depthwise = t.shape[3] == 1 and t.shape[2] > 1   # mirrors to_keras_layout's test
                t = t.transpose(2, 3, 0, 1) if depthwise else t.transpose(3, 2, 0, 1)
            elif t.ndim == 2 and key.endswith(".weight"):
                t = t.T
            out[key] = np.ascontiguousarray(t)
    if not out:
        raise ValueError(f"{model.name} has no weights with timm names (is it a keras_mobile model?)")
    return out


def save_timm_checkpoint(model, path):
    """Writes `timm_state_dict(model)` to `path` (.safetensors, atomically). Returns the path."""
    from safetensors.numpy import save_file
    if not str(path).endswith(".safetensors"):
        raise ValueError(f"path must end with .safetensors, got {path}")
    from keras_mobile.files import atomic_path
    tensors = timm_state_dict(model)
    with atomic_path(path) as tmp:
        save_file(tensors, tmp)
    return path


def _leaf_layers(model):
    import keras
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer

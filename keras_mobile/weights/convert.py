"""timm state_dict (PyTorch layouts) <-> Keras layouts, numpy only, no pickle.

Layouts: conv OIHW <-> HWIO; depthwise OIHW [C, 1, k, k] <-> [k, k, C, 1]; Linear [out, in] <->
[in, out]. Buffers that Keras derives itself (BN num_batches_tracked, EfficientFormer
attention_bias_idxs) are dropped on the way in.
"""
import numpy as np
from keras_mobile.progress import progress_bar

SKIPPED_SUFFIXES = ("num_batches_tracked", "attention_bias_idxs")


def to_keras_layout(tensors, progress=True, desc="converting"):
    """{timm key: array in PyTorch layout} -> {timm key: array in Keras layout}."""
    out = {}
    for key in progress_bar(sorted(tensors), progress, desc=desc, unit="tensor", leave=False):
        if key.endswith(SKIPPED_SUFFIXES):
            continue
        t = np.asarray(tensors[key])
        if t.ndim == 4:
            depthwise = t.shape[1] == 1 and t.shape[0] > 1
            t = t.transpose(2, 3, 0, 1) if depthwise else t.transpose(2, 3, 1, 0)
        elif t.ndim == 2 and key.endswith(".weight"):
            t = t.T
        out[key] = np.ascontiguousarray(t, dtype=np.float32)
    return out


def to_timm_layout(tensors):
    """{timm key: array in Keras layout} -> {timm key: float32 array in PyTorch layout}: the
    inverse of `to_keras_layout` (a [k, k, C, 1] kernel with C > 1 is depthwise, as there)."""
    out = {}
    for key, t in tensors.items():
        t = np.asarray(t, dtype=np.float32)
        if t.ndim == 4:
            depthwise = t.shape[3] == 1 and t.shape[2] > 1
            t = t.transpose(2, 3, 0, 1) if depthwise else t.transpose(3, 2, 0, 1)
        elif t.ndim == 2 and key.endswith(".weight"):
            t = t.T
        out[key] = np.ascontiguousarray(t)
    return out

"""`preprocess_input` / `decode_predictions` in the keras.applications style.

The ImageNet-1k class index ships with the package (assets/imagenet_class_index.json, built
from timm's synset tables), so decoding works offline.
"""
import functools
import json
import os

import numpy as np

_INDEX = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "imagenet_class_index.json")


def preprocess_input(x, data_format=None):
    """A placeholder, as in keras.applications.mobilenet_v3: returns `x` unchanged.

    keras_mobile models normalise inside the model (include_preprocessing=True, the default)
    and take raw RGB pixels in [0, 255]. For a model built with include_preprocessing=False,
    use `normalize_input(x, mean, std)` with the checkpoint's mean/std.
    """
    return x


def normalize_input(x, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    """[0, 255] RGB -> (x / 255 - mean) / std, channels last."""
    x = np.asarray(x, dtype=np.float32) / 255.0
    return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


@functools.lru_cache(maxsize=1)
def class_index():
    """{class id: (WordNet id, name)} of ImageNet-1k, from the copy shipped with the package."""
    with open(_INDEX) as f:
        return {int(k): tuple(v) for k, v in json.load(f).items()}


def decode_predictions(preds, top=5):
    """[(class_id, class_name, score)] per sample, best first, for 1000-class ImageNet outputs."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("decode_predictions expects a batch of ImageNet-1k predictions of shape "
                         f"(samples, 1000), got {preds.shape}")
    index = class_index()
    results = []
    for p in preds:
        best = np.argsort(p)[::-1][:top]
        results.append([(index[i][0], index[i][1], float(p[i])) for i in best])
    return results

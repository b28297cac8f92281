"""Calibration data for int8 export: arrays, iterables of batches, tf.data datasets or an image
folder, all turned into single [1, H, W, C] float32 samples of the model's input (raw pixels
for keras_mobile models, which normalise inside the model)."""
import os

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _from_folder(folder, size):
    from PIL import Image
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"representative_data folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    for f in files:
        img = Image.open(f).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
        yield np.asarray(img, dtype=np.float32)[None]


def _batches(data):
    if hasattr(data, "as_numpy_iterator"):          # tf.data.Dataset
        data = data.as_numpy_iterator()
    if isinstance(data, np.ndarray):
        data = [data]
    for item in data:
        if isinstance(item, (tuple, list)) and len(item) in (1, 2) and not np.isscalar(item[0]):
            item = item[0]                          # (images, labels) pairs: keep the images
        if isinstance(item, dict):
            item = next(iter(item.values()))
        yield np.asarray(item, dtype=np.float32)


def samples(data, input_shape, limit):
    """Yields up to `limit` samples shaped (1,) + input_shape; ValueError on a shape mismatch."""
    input_shape = tuple(input_shape)
    if isinstance(data, (str, os.PathLike)):
        if not os.path.isdir(data):
            raise ValueError(f"representative_data folder does not exist: {data}")
        source = _from_folder(data, input_shape[:2])
    else:
        source = _batches(data)
    n = 0
    for batch in source:
        if batch.shape == input_shape:
            batch = batch[None]
        if tuple(batch.shape[1:]) != input_shape:
            raise ValueError(f"representative_data samples have shape {tuple(batch.shape[1:])}, "
                             f"the model expects {input_shape}")
        for s in batch:
            yield s[None]
            n += 1
            if n >= limit:
                return
    if n == 0:
        raise ValueError("representative_data yielded no samples")


def set_bn_statistics(model, images):
    """Sets every BatchNormalization's moving mean/variance to the statistics its input has on
    `images` (one forward pass in training mode with momentum 0), so a randomly initialised model
    has the unit-scale activations of a trained one. Int8 scales, and which ops XNNPACK accepts
    (it rejects an ADD whose input/output scale ratio is below 2^-10), depend on those ranges:
    with Keras' default init the activations of deep MobileNets shrink to ~1e-8. Returns `model`."""
    import keras
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(np.asarray(images, dtype=np.float32), training=True)
    finally:
        for layer, m in zip(norms, momenta):
            layer.momentum = m
    return model

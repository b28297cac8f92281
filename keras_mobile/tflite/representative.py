"""Calibration data for int8 export: arrays, iterables of batches, generator functions (the
`representative_dataset` style of TensorFlow: `def gen(): yield [x]`), tf.data datasets or an
image folder, all turned into single [1, H, W, C] float32 samples of the model's input (raw
pixels for keras_mobile models, which normalise inside the model).

`prepare` checks the data before the (slow) conversion starts (`read` checks and reads it once): a missing or empty folder, a
wrong sample shape, and [0, 1] data for a model that takes [0, 255] pixels raise ValueError
there, instead of inside TensorFlow's calibration after the model was converted.
"""
import itertools
import os

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def image_files(folder):
    """Sorted image files under `folder` (recursive); ValueError if it is missing or has none."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"representative_data folder does not exist: {folder}")
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"representative_data folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _from_folder(folder, size):
    from PIL import Image
    for f in image_files(folder):
        img = Image.open(f).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
        yield np.asarray(img, dtype=np.float32)[None]


def _batches(data):
    if hasattr(data, "as_numpy_iterator"):          # tf.data.Dataset
        data = data.as_numpy_iterator()
    elif callable(data):                            # generator function, as tf.lite's representative_dataset
        data = data()
    if isinstance(data, np.ndarray):
        data = [data]
    for item in data:
        if isinstance(item, (tuple, list)) and len(item) in (1, 2) and not np.isscalar(item[0]):
            item = item[0]                          # [images] or (images, labels): keep the images
        if isinstance(item, dict):
            item = next(iter(item.values()))
        yield np.asarray(item, dtype=np.float32)


def samples(data, input_shape, limit):
    """Yields up to `limit` samples shaped (1,) + input_shape; ValueError on a shape mismatch."""
    input_shape = tuple(input_shape)
    source = _from_folder(data, input_shape[:2]) if isinstance(data, (str, os.PathLike)) else _batches(data)
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


def takes_raw_pixels(model):
    """True when the model normalises [0, 255] pixels itself (a keras_mobile 'preprocessing'
    Rescaling layer, possibly inside a nested backbone, or its QAT form: quantize_model turns it
    into a QuantConv of the same name; the default int8 export into an AffineAsDepthwise)."""
    import keras

    from keras_mobile import graph
    from keras_mobile.tflite.affine_as_depthwise import AffineAsDepthwise
    from keras_mobile.tflite.fake_quant import QuantConv
    return any(isinstance(layer, (keras.layers.Rescaling, QuantConv, AffineAsDepthwise)) and layer.name == "preprocessing"
               for layer in graph.leaf_layers(model))


def prepare(data, input_shape, model=None):
    """Checks `data` before conversion; returns what `samples` should read (one-shot iterators, and
    what a generator function returned, come back with their first batch put back in front).

    Raises ValueError for a missing/empty folder, data yielding nothing, samples of the wrong
    shape, or, when `model` takes raw [0, 255] pixels, data that lies within [0, 1] (images
    already scaled: the int8 ranges would be calibrated on 1/255 of the real ones) or has negative
    values and a maximum of at most 3 (already normalised, e.g. with ImageNet's mean and std or to
    [-1, 1]; raw pixels with noise or augmentation that dips below 0 pass).
    """
    input_shape = tuple(input_shape)
    if isinstance(data, (str, os.PathLike)):
        image_files(data)
        return data                                 # images from files are [0, 255] by construction
    if not (isinstance(data, np.ndarray) or callable(data) or hasattr(data, "__iter__")
            or hasattr(data, "as_numpy_iterator")):
        raise ValueError(f"representative_data must be an array, an iterable of batches, a generator "
                         f"function, a tf.data.Dataset or an image folder, got {type(data).__name__}")
    if callable(data) and not hasattr(data, "as_numpy_iterator"):
        data = data()                               # a generator function is called once (it may read files)
    reiterable = isinstance(data, np.ndarray) or hasattr(data, "as_numpy_iterator") \
        or (hasattr(data, "__iter__") and iter(data) is not data)
    if isinstance(data, np.ndarray):
        first = data.astype(np.float32, copy=False)
        first = first[None] if first.shape == input_shape else first
    else:
        source = iter(data) if not reiterable else None
        stream = _batches(data if reiterable else source)
        try:
            first = next(stream)
        except StopIteration:
            raise ValueError("representative_data yielded no samples") from None
        if not reiterable:                          # put the batch taken back in front
            data = itertools.chain([first], stream)
    next(samples([first], input_shape, 1))          # shape check, same rule as calibration
    if model is not None and first.size and takes_raw_pixels(model):
        lo, hi = float(first.min()), float(first.max())
        if lo < 0 and hi <= 3.0:     # ImageNet mean/std tops out at 2.64; raw pixels with noise reach far higher
            raise ValueError(
                f"representative_data has negative values (min {lo:.3g}, max {hi:.3g}), but {model.name} takes "
                f"raw [0, 255] pixels (its 'preprocessing' layer normalises them): the data looks already "
                f"normalised (e.g. ImageNet mean/std or [-1, 1]); pass the unnormalised images")
        if 0 < hi <= 1.0:
            raise ValueError(
                f"representative_data ranges over [{lo:.3g}, {hi:.3g}], but {model.name} takes raw [0, 255] "
                f"pixels (its 'preprocessing' layer normalises them): pass the images unscaled (e.g. "
                f"multiply by 255), or build the model with include_preprocessing=False and normalise "
                f"the data yourself")
    return data


class Samples(tuple):
    """Calibration samples already checked and read by `read`: (1, H, W, C) float32 arrays."""


def read(data, input_shape, limit, model=None):
    """Checks `data` (`prepare`) and reads up to `limit` samples from it (`samples`), once.

    Returns a `Samples` tuple; given a `Samples`, its first `limit` (shape-checked, not read again),
    so the steps of one export (the dead-input check, calibration, the outlier screen) share one
    reading of the data."""
    input_shape = tuple(input_shape)
    if isinstance(data, Samples):
        next(samples(data[:1], input_shape, 1))     # same shape rule and message as fresh data
        return Samples(data[:limit])
    return Samples(samples(prepare(data, input_shape, model), input_shape, limit))


def set_bn_statistics(model, images):
    """Sets every BatchNormalization's moving mean/variance to the statistics its input has on
    `images` (one forward pass in training mode with momentum 0), so a randomly initialised model
    has the unit-scale activations of a trained one. Int8 scales, and which ops XNNPACK accepts
    (it rejects an ADD whose input/output scale ratio is below 2^-10), depend on those ranges:
    with Keras' default init the activations of deep MobileNets shrink to ~1e-8. Returns `model`."""
    import keras

    from keras_mobile import graph
    norms = [layer for layer in graph.sublayers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(np.asarray(images, dtype=np.float32), training=True)
    finally:
        for layer, m in zip(norms, momenta):
            layer.momentum = m
    return model


def outlier_samples(float_tflite, sample_list, factor=10.0, max_fraction=0.05):
    """Indices of the rare calibration samples that drive some activation far beyond its usual range.

    Min/max calibration sizes every int8 scale by the single most extreme sample. A trained
    MobileNetV3Small (benchmarks/ptq_diagnose.py) had 4 of 300 images pushing its residual stream
    to 100x the typical range: every later tensor of the other images then quantized to 0-3
    steps and int8 top-1 fell from 71 to 54 %. Here each sample runs through the float file
    (`float_tflite`, bytes) with all tensors kept; a sample is an outlier when, for some tensor, its
    largest |value| exceeds `factor` x the median over samples of that per-sample maximum. At most
    `max_fraction` of the samples (the most extreme first) are returned: a heavier tail than that is
    the data's real range, not a few odd inputs.
    """
    from keras_mobile.tflite.inspect import make_interpreter, op_details
    it = make_interpreter(float_tflite, delegates=False, preserve_all_tensors=True)
    inp = it.get_input_details()[0]
    floats = {d["index"] for d in it.get_tensor_details() if d["dtype"] == np.float32}
    outputs = sorted({int(i) for op in op_details(it) for i in op["outputs"]} & floats)
    peaks = np.zeros((len(sample_list), len(outputs)), np.float32)
    for n, s in enumerate(sample_list):
        it.set_tensor(inp["index"], np.asarray(s, np.float32))
        it.invoke()
        peaks[n] = [np.abs(it.get_tensor(i)).max() for i in outputs]
    median = np.median(peaks, axis=0)
    ratio = np.max(np.where(median > 0, peaks / np.maximum(median, 1e-12), 0.0), axis=1)
    worst = np.argsort(-ratio)[:int(max_fraction * len(sample_list))]
    return sorted(int(i) for i in worst if ratio[i] > factor)

"""tf.data input pipelines for fine-tuning: image folders, tensorflow-datasets, in-memory arrays.

Every pipeline yields `(images, one_hot_labels)` batches with images as float32 **raw [0, 255]
RGB pixels** at the model's input size: keras_mobile models normalise inside the model
(`include_preprocessing=True`, the default), with the mean/std of the checkpoint they load.
Labels are one-hot so label smoothing (`keras.losses.CategoricalCrossentropy`) and mixup/cutmix
work. Decoding/resizing runs once and is cached (uint8, at ~1.15x the training size); random
crops, flips and mixing run each epoch. The datasets work with `model.fit` on the TensorFlow
and JAX backends (Keras accepts tf.data under JAX).
"""
import math
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

LOAD_MARGIN = 1.15   # decode/cache at this multiple of the training size, so random crops keep detail


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation (evaluation pipelines ignore it).

    flip: random horizontal flip (turn off for text, digits, or anything with handedness).
    crop_scale: (min, max) area fraction of the random-resized crop (Inception-style); None
        keeps the whole image (resize + centre crop only).
    crop_ratio: aspect-ratio range of the random crop.
    mixup_alpha / cutmix_alpha: Beta(alpha, alpha) mixing of batch pairs (0 = off); with both on,
        each batch uses one of them at random.
    """
    flip: bool = True
    crop_scale: Optional[Tuple[float, float]] = (0.35, 1.0)
    crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3)
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    def __post_init__(self):
        if self.crop_scale is not None:
            lo, hi = self.crop_scale
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError(f"mixup_alpha/cutmix_alpha must be >= 0, got {self.mixup_alpha}, "
                             f"{self.cutmix_alpha}")


NO_AUGMENT = Augment(flip=False, crop_scale=None)


def input_size(model_or_size):
    """(height, width) from a model (its static input shape) or an int / (h, w) pair."""
    if hasattr(model_or_size, "input_shape"):
        shape = model_or_size.input_shape
        if isinstance(shape, list):
            raise ValueError(f"{model_or_size.name} has several inputs; pass the image size instead")
        h, w = shape[1:3]
        if h is None or w is None:
            raise ValueError(f"{model_or_size.name} has a dynamic input size {shape}; pass the "
                             f"training size (int) instead of the model")
        if not any(layer.name == "preprocessing" for layer in model_or_size.layers):
            warnings.warn(f"{model_or_size.name} has no 'preprocessing' layer: these pipelines feed raw "
                          f"[0, 255] pixels, so build it with include_preprocessing=True or pass "
                          f"preprocess= to normalise", stacklevel=3)
        return int(h), int(w)
    if isinstance(model_or_size, (int, np.integer)):
        size = (int(model_or_size), int(model_or_size))
    else:
        size = tuple(int(s) for s in model_or_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {model_or_size!r}")
    return size


def array_dataset(x, y, model_or_size, num_classes=None, batch_size=32, training=True,
                  augment=None, cache=True, seed=0, progressive=None, preprocess=None):
    """Pipeline over in-memory images.

    Args:
        x: [N, H, W, 3] or [N, H, W] / [N, H, W, 1] (grayscale -> RGB) images in [0, 255].
        y: [N] integer labels.
        model_or_size: the model (its input size is used) or a size (int or (h, w)).
        num_classes: default max(y) + 1.
        batch_size: batch size; training batches drop the remainder (one traced step shape).
        training: shuffle + augment (else resize + centre crop, in order).
        augment: an `Augment`; default `Augment()` when training.
        cache: cache decoded images in memory (True), in a file (path) or not (False).
        seed: shuffling / augmentation seed.
        progressive: a `ProgressiveResizing` callback (training only; pass it to fit too).
        preprocess: optional fn(images) applied last (only for models without preprocessing).
    """
    import tensorflow as tf
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"x must be [N, H, W], [N, H, W, 1] or [N, H, W, 3] images, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must be [N] integer labels matching x ({len(x)} images), got shape {y.shape}")
    if x.size and (x.min() < 0 or 0 < x.max() <= 1.0):
        warnings.warn(f"x ranges over [{x.min():.3g}, {x.max():.3g}]; keras_mobile models expect raw "
                      f"[0, 255] pixels", stacklevel=2)
    num_classes = _num_classes(num_classes, y)
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    return _finish(ds, input_size(model_or_size), num_classes, batch_size, training, augment, cache,
                   seed, progressive, preprocess, shuffle_buffer=len(x))


def image_folder_dataset(path, model_or_size, batch_size=32, validation_split=None, training=True,
                         augment=None, cache=True, seed=0, progressive=None, preprocess=None):
    """Pipeline over a folder with one sub-folder of images per class
    (`keras.utils.image_dataset_from_directory`).

    With `validation_split` (e.g. 0.2) returns `(train, validation)`, split by file with `seed`;
    otherwise one dataset (augmented when `training`). `dataset.class_names` lists the classes.
    Other arguments as in `array_dataset`.
    """
    import keras
    import tensorflow as tf
    size = input_size(model_or_size)
    load = tuple(math.ceil(s * LOAD_MARGIN) for s in size)
    common = dict(labels="inferred", label_mode="int", image_size=load, batch_size=None,
                  crop_to_aspect_ratio=True, shuffle=True, seed=seed)
    if validation_split:
        parts = keras.utils.image_dataset_from_directory(path, validation_split=validation_split,
                                                          subset="both", **common)
    else:
        parts = [keras.utils.image_dataset_from_directory(path, **common)]
    names = parts[0].class_names
    out = []
    for i, ds in enumerate(parts):
        ds = ds.map(lambda im, lb: (tf.cast(tf.clip_by_value(tf.round(im), 0, 255), tf.uint8), lb),
                    num_parallel_calls=tf.data.AUTOTUNE)
        is_train = training and i == 0
        n = int(ds.cardinality()) if int(ds.cardinality()) > 0 else 10000
        ds = _finish(ds, size, len(names), batch_size, is_train, augment, cache, seed,
                     progressive if is_train else None, preprocess, shuffle_buffer=min(n, 10000))
        ds.class_names = names
        out.append(ds)
    return tuple(out) if validation_split else out[0]


def tfds_dataset(name, split, model_or_size, batch_size=32, training=None, augment=None, cache=True,
                 seed=0, data_dir=None, download=True, progressive=None, preprocess=None):
    """Pipeline over a tensorflow-datasets image classification set (`tfds.load(name, split=...,
    as_supervised=True)`), e.g. `tfds_dataset("tf_flowers", "train[:80%]", model)`.

    `training` defaults to `split.startswith("train")`; grayscale sets become RGB;
    `dataset.class_names` comes from the dataset info. Other arguments as in `array_dataset`.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError("tfds_dataset needs tensorflow-datasets: pip install tensorflow-datasets "
                          "(or the extra: 'keras-mobile-vision[data]')") from e
    import tensorflow as tf
    size = input_size(model_or_size)
    if training is None:
        training = split.startswith("train")
    ds, info = tfds.load(name, split=split, as_supervised=True, with_info=True, data_dir=data_dir,
                         download=download)
    label = info.features[info.supervised_keys[1]]
    if not hasattr(label, "num_classes"):
        raise ValueError(f"{name}: label feature {info.supervised_keys[1]!r} is not a ClassLabel; "
                         f"tfds_dataset is for image classification sets")
    short = math.ceil(min(size) * LOAD_MARGIN)

    def load(image, lb):   # shrink big images before caching; keep the aspect ratio
        if image.shape.rank == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = tf.minimum(1.0, short / tf.reduce_min(hw))
        image = tf.image.resize(image, tf.cast(tf.round(hw * scale), tf.int32), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), tf.cast(lb, tf.int32)

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    n = info.splits[split].num_examples if split in info.splits else 10000
    ds = _finish(ds, size, label.num_classes, batch_size, training, augment, cache, seed,
                 progressive, preprocess, shuffle_buffer=min(n, 10000))
    ds.class_names = list(label.names)
    return ds


def mix_batch(mixup_alpha=0.0, cutmix_alpha=0.0, seed=None):
    """A tf.data map function over `(images, one_hot_labels)` batches applying mixup and/or
    cutmix (Zhang et al. 2018; Yun et al. 2019) between each sample and the batch reversed."""
    import tensorflow as tf

    def beta(alpha):
        a = tf.random.gamma([], alpha, seed=seed)
        b = tf.random.gamma([], alpha, seed=seed)
        return a / (a + b)

    def mixup(images, labels):
        lam = beta(mixup_alpha)
        return (lam * images + (1 - lam) * tf.reverse(images, [0]),
                lam * labels + (1 - lam) * tf.reverse(labels, [0]))

    def cutmix(images, labels):
        lam = beta(cutmix_alpha)
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        r = tf.sqrt(1.0 - lam)
        ch, cw = tf.cast(r * tf.cast(h, tf.float32), tf.int32), tf.cast(r * tf.cast(w, tf.float32), tf.int32)
        cy = tf.random.uniform([], 0, h, dtype=tf.int32, seed=seed)
        cx = tf.random.uniform([], 0, w, dtype=tf.int32, seed=seed)
        y0, y1 = tf.maximum(cy - ch // 2, 0), tf.minimum(cy + ch // 2, h)
        x0, x1 = tf.maximum(cx - cw // 2, 0), tf.minimum(cx + cw // 2, w)
        rows = tf.logical_and(tf.range(h) >= y0, tf.range(h) < y1)
        cols = tf.logical_and(tf.range(w) >= x0, tf.range(w) < x1)
        box = tf.cast(tf.logical_and(rows[:, None], cols[None, :]), images.dtype)[None, :, :, None]
        images = images * (1 - box) + tf.reverse(images, [0]) * box
        lam = 1.0 - tf.cast((y1 - y0) * (x1 - x0), tf.float32) / tf.cast(h * w, tf.float32)
        return images, lam * labels + (1 - lam) * tf.reverse(labels, [0])

    def fn(images, labels):
        if mixup_alpha > 0 and cutmix_alpha > 0:
            return tf.cond(tf.random.uniform([], seed=seed) < 0.5,
                           lambda: mixup(images, labels), lambda: cutmix(images, labels))
        if mixup_alpha > 0:
            return mixup(images, labels)
        if cutmix_alpha > 0:
            return cutmix(images, labels)
        return images, labels
    return fn


def _num_classes(num_classes, y):
    if num_classes is None:
        return int(y.max()) + 1 if len(y) else 1
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels range over [{y.min()}, {y.max()}], outside num_classes={num_classes}")
    return int(num_classes)


def _center_crop(image, size):
    """Largest centred crop with the target aspect ratio, resized to `size` (timm eval, crop_pct=1)."""
    import tensorflow as tf
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    target = tf.constant(size[0] / size[1], tf.float32)
    crop_h = tf.minimum(hw[0], hw[1] * target)
    crop_w = tf.minimum(hw[1], hw[0] / target)
    top = tf.cast((hw[0] - crop_h) / 2, tf.int32)
    left = tf.cast((hw[1] - crop_w) / 2, tf.int32)
    image = tf.image.crop_to_bounding_box(image, top, left, tf.cast(crop_h, tf.int32), tf.cast(crop_w, tf.int32))
    return tf.image.resize(image, size, antialias=True)


def _random_resized_crop(image, size, scale, ratio, seed):
    import tensorflow as tf
    begin, crop, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([0, 0, 4]), min_object_covered=0.0, aspect_ratio_range=ratio,
        area_range=scale, max_attempts=10, use_image_if_no_bounding_boxes=True,
        seed=seed + 1)   # op determinism (training.set_seed) refuses seed 0 for this op
    return tf.image.resize(tf.slice(image, begin, crop), size, antialias=True)


def _finish(ds, size, num_classes, batch_size, training, augment, cache, seed, progressive,
            preprocess, shuffle_buffer):
    """Cache -> shuffle -> per-image transform -> batch -> mix -> prefetch."""
    import tensorflow as tf
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    augment = (augment or Augment()) if training else NO_AUGMENT
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if training:
        ds = ds.shuffle(max(1, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)

    def transform(image, label):
        image = tf.cast(image, tf.float32)
        if image.shape.rank == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        if augment.crop_scale is not None:
            image = _random_resized_crop(image, size, augment.crop_scale, augment.crop_ratio, seed)
        else:
            image = _center_crop(image, size)
        if augment.flip:
            image = tf.image.random_flip_left_right(image, seed=seed)
        if progressive is not None:   # low-resolution curriculum at the model's static size
            s = progressive.size
            image = tf.image.resize(tf.image.resize(image, tf.stack([s, s]), antialias=True), size)
        image = tf.clip_by_value(image, 0.0, 255.0)
        image.set_shape(tuple(size) + (3,))
        return image, tf.one_hot(label, num_classes, dtype=tf.float32)

    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training)
    if training and (augment.mixup_alpha > 0 or augment.cutmix_alpha > 0):
        ds = ds.map(mix_batch(augment.mixup_alpha, augment.cutmix_alpha, seed), num_parallel_calls=tf.data.AUTOTUNE)
    if preprocess is not None:
        ds = ds.map(lambda im, lb: (preprocess(im), lb), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

"""Procedural shapes dataset for detection and segmentation (no download).

Each image has a random background (colour gradient + noise) and 1..max_objects shapes
(circle, square, triangle) of random colour, size and position, drawn in order so later
shapes occlude earlier ones. Boxes and masks describe the VISIBLE part; shapes occluded below
`min_visible` of their area are dropped from the targets (their visible fragment stays in the
image as unlabelled clutter and is background in the mask).
"""
import numpy as np

CLASS_NAMES = ("circle", "square", "triangle")


def _shape_mask(kind, cy, cx, r, size, rng):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if kind == 0:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == 1:
        return (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
    # upward triangle inside the r-square
    top, bottom = cy - r, cy + r
    t = (yy - top) / (2 * r)
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= t * r)


def generate(num_images, size=128, max_objects=4, min_size=0.12, max_size=0.4, min_visible=0.4,
             seed=0):
    """Returns dict images uint8 [n, size, size, 3]; boxes float32 [n, max_objects, 4]
    (ymin, xmin, ymax, xmax in [0, 1], zero padding); classes int32 [n, max_objects] (0..2,
    -1 padding); masks uint8 [n, size, size] (0 background, 1 + class id)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((num_images, size, size, 3), np.uint8)
    boxes = np.zeros((num_images, max_objects, 4), np.float32)
    classes = -np.ones((num_images, max_objects), np.int32)
    masks = np.zeros((num_images, size, size), np.uint8)
    yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    for i in range(num_images):
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        img = c0 * (1 - yy) + c1 * yy + np.zeros((size, size, 3), np.float32)
        img += rng.normal(0, 8, img.shape)
        inst = -np.ones((size, size), np.int32)
        kinds = []
        for k in range(rng.integers(1, max_objects + 1)):
            kind = int(rng.integers(0, 3))
            r = rng.uniform(min_size, max_size) * size / 2
            cy, cx = rng.uniform(r, size - r, 2)
            m = _shape_mask(kind, cy, cx, r, size, rng)
            colour = rng.uniform(0, 255, 3)
            while np.abs(colour - img[m].mean(0)).sum() < 120:   # keep shapes visible
                colour = rng.uniform(0, 255, 3)
            img[m] = colour + rng.normal(0, 4, (int(m.sum()), 3))
            inst[m] = k
            kinds.append((kind, int(m.sum())))
        j = 0
        for k, (kind, area) in enumerate(kinds):
            vis = inst == k
            if vis.sum() < min_visible * area or vis.sum() == 0:
                continue
            ys, xs = np.nonzero(vis)
            boxes[i, j] = (ys.min() / size, xs.min() / size, (ys.max() + 1) / size,
                           (xs.max() + 1) / size)
            classes[i, j] = kind
            masks[i][vis] = kind + 1
            j += 1
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return {"images": images, "boxes": boxes, "classes": classes, "masks": masks}


def load_tfds_detection(name, split, size, max_objects=20, num_images=None, data_dir=None):
    """A tensorflow-datasets detection set (features image + objects/bbox + objects/label, e.g.
    voc/2012, coco/2017) in the same layout as `generate` (images resized to size x size)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds
    ds = tfds.load(name, split=split, data_dir=data_dir)
    if num_images:
        ds = ds.take(num_images)
    images, boxes, classes = [], [], []
    for ex in tfds.as_numpy(ds):
        images.append(tf.image.resize(ex["image"], (size, size)).numpy().clip(0, 255).astype(np.uint8))
        b = np.zeros((max_objects, 4), np.float32)
        c = -np.ones((max_objects,), np.int32)
        ob = ex["objects"]
        n = min(len(ob["label"]), max_objects)
        b[:n] = ob["bbox"][:n]
        c[:n] = ob["label"][:n]
        boxes.append(b)
        classes.append(c)
    info = tfds.builder(name, data_dir=data_dir).info
    names = tuple(info.features["objects"]["label"].names)
    return {"images": np.stack(images), "boxes": np.stack(boxes), "classes": np.stack(classes),
            "class_names": names}


def load_tfds_segmentation(name, split, size, num_images=None, data_dir=None,
                           mask_key="segmentation_mask"):
    """A tensorflow-datasets segmentation set (image + `mask_key`) resized to size x size."""
    import tensorflow as tf
    import tensorflow_datasets as tfds
    ds = tfds.load(name, split=split, data_dir=data_dir)
    if num_images:
        ds = ds.take(num_images)
    images, masks = [], []
    for ex in tfds.as_numpy(ds):
        images.append(tf.image.resize(ex["image"], (size, size)).numpy().clip(0, 255).astype(np.uint8))
        m = ex[mask_key]
        m = m[..., 0] if m.ndim == 3 else m
        masks.append(tf.image.resize(m[..., None], (size, size), method="nearest").numpy()[..., 0])
    return {"images": np.stack(images), "masks": np.stack(masks).astype(np.uint8)}


def stream(num_images, size=128, batch_size=16, task="detection", seed=0, **kwargs):
    """A `keras.utils.PyDataset` of procedural shapes that draws a fresh set of `num_images`
    every epoch (seed + epoch), so a detector or segmenter trained on it sees new images each
    epoch instead of memorising a fixed set. Batches are (images float32, targets): targets
    {"boxes", "classes"} for task="detection", int32 masks for task="segmentation"."""
    import keras

    if task not in ("detection", "segmentation"):
        raise ValueError(f"task must be 'detection' or 'segmentation', got {task!r}")

    class _Stream(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self._draw()

        def _draw(self):
            self.data = generate(num_images, size, seed=seed + 7919 * self.epoch, **kwargs)

        def __len__(self):
            return (num_images + batch_size - 1) // batch_size

        def __getitem__(self, idx):
            s = slice(idx * batch_size, (idx + 1) * batch_size)
            x = self.data["images"][s].astype("float32")
            if task == "detection":
                return x, {"boxes": self.data["boxes"][s], "classes": self.data["classes"][s]}
            return x, self.data["masks"][s].astype("int32")

        def on_epoch_end(self):
            self.epoch += 1
            self._draw()

    return _Stream()

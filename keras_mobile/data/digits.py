"""Hard digits: scikit-learn's bundled 8x8 digits made into a small task that is not solved at
~99 % (no download). Each image is one digit under a random rotation (+-30 deg), shear, scale
(0.55-0.95) and shift, with a fragment of another digit as clutter, random foreground and
background colours and pixel noise. The 1,797 source digits are split 70/30 before any
augmentation, so no test image is drawn from a digit the model trained on.

Used where the clean digits are too easy to show a difference: int8 post-training
quantization against quantization-aware training (benchmarks/qat_vs_ptq.py).
"""
import numpy as np


def _render(n, size, bases, labels, rng):
    from scipy import ndimage

    images = np.empty((n, size, size, 3), np.float32)
    targets = np.empty(n, np.int32)
    centre = np.full(2, (size - 1) / 2)
    for i in range(n):
        k = rng.integers(len(bases))
        digit = ndimage.zoom(bases[k], size / 8, order=1)
        angle, shear, scale = rng.uniform(-0.52, 0.52), rng.uniform(-0.3, 0.3), rng.uniform(0.55, 0.95)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        inverse = np.linalg.inv(rotation @ np.array([[1.0, shear], [0.0, 1.0]]) * scale)
        shift = rng.uniform(-0.12, 0.12, 2) * size
        gray = ndimage.affine_transform(digit, inverse, centre - inverse @ (centre + shift), order=1)
        piece = ndimage.zoom(bases[rng.integers(len(bases))], size / 8 * rng.uniform(0.4, 0.7), order=1)
        top, left = rng.integers(0, size - piece.shape[0] + 1, 2)
        clutter = np.zeros_like(gray)
        clutter[top:top + piece.shape[0], left:left + piece.shape[1]] = piece * rng.uniform(0.3, 0.7)
        gray = np.maximum(gray, clutter)
        while True:                               # colours far enough apart to see the digit
            fg, bg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
            if np.abs(fg - bg).mean() >= 0.35:
                break
        image = bg + (fg - bg) * gray[..., None] + rng.normal(0, rng.uniform(0.02, 0.12), (size, size, 3))
        images[i] = np.clip(image, 0.0, 1.0) * 255.0
        targets[i] = labels[k]
    return images, targets


def hard_digits(num_train=20000, num_test=10000, size=32, seed=0):
    """Returns ((x_train, y_train), (x_test, y_test)): float32 RGB images in [0, 255] of shape
    [n, size, size, 3] and int32 labels 0..9. `seed` draws the training images; the test set
    and the 70/30 split of the source digits are fixed, so runs with different seeds are scored
    on the same test images."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("hard_digits needs scikit-learn: pip install scikit-learn "
                          "(or the extra: 'keras-mobile-vision[data]')") from e
    if min(num_train, num_test) < 1 or size < 8:
        raise ValueError(f"need num_train, num_test >= 1 and size >= 8, got {num_train}, {num_test}, {size}")
    digits = load_digits()
    bases = digits.images / 16.0
    order = np.random.default_rng(1234).permutation(len(bases))
    train, test = order[:int(0.7 * len(order))], order[int(0.7 * len(order)):]
    return (_render(num_train, size, bases[train], digits.target[train], np.random.default_rng(seed)),
            _render(num_test, size, bases[test], digits.target[test], np.random.default_rng(10**6)))

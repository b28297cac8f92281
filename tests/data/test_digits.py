"""keras_mobile.data.digits.hard_digits: the non-saturated task of the PTQ-vs-QAT benchmark."""
import numpy as np
import pytest

pytest.importorskip("sklearn")
from keras_mobile.data.digits import hard_digits  # noqa: E402


def test_images_labels_and_seeds():
    (x, y), (xt, yt) = hard_digits(200, 100, size=24, seed=3)
    assert x.shape == (200, 24, 24, 3) and xt.shape == (100, 24, 24, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 255.0 and x.std() > 20      # coloured, not blank
    assert set(np.unique(y)) == set(range(10)) and y.dtype == np.int32
    (x2, y2), (xt2, yt2) = hard_digits(200, 100, size=24, seed=3)
    np.testing.assert_array_equal(x, x2)                              # a seed is reproducible
    (x4, _), (xt4, yt4) = hard_digits(200, 100, size=24, seed=4)
    assert np.abs(x - x4).mean() > 10                                 # another seed draws other images
    np.testing.assert_array_equal(xt, xt4)                            # ... scored on the same test set
    np.testing.assert_array_equal(yt, yt4)


def test_augmentation_makes_images_differ_from_their_digit():
    """Two training images of the same digit class are far apart: the task is not the clean
    digits (where every model is at ~99 % and quantization differences vanish)."""
    (x, y), _ = hard_digits(300, 10, size=32, seed=0)
    ones = x[y == 1].reshape(-1, 32 * 32 * 3)
    spread = np.abs(ones[:, None] - ones[None]).mean(-1)
    assert np.median(spread[np.triu_indices(len(ones), 1)]) > 40


@pytest.mark.parametrize("kwargs", [dict(num_train=0), dict(num_test=0), dict(size=4)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="num_train, num_test >= 1 and size >= 8"):
        hard_digits(**{"num_train": 10, "num_test": 10, **kwargs})

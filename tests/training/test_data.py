"""Input pipelines: raw-pixel images at the model size, one-hot labels, augmentation only when
training, image folders (labels from sub-folders), tensorflow-datasets (mocked, offline), mixing."""
import numpy as np
import pytest

from keras_mobile import training


def test_array_dataset_eval_is_a_plain_resize_in_order():
    import tensorflow as tf
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (10, 16, 16, 3)).astype("float32")
    y = np.arange(10) % 4
    ds = training.array_dataset(x, y, 32, batch_size=4, training=False)
    images, labels = zip(*[(a.numpy(), b.numpy()) for a, b in ds])
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.shape == (10, 32, 32, 3) and images.dtype == np.float32   # remainder kept
    np.testing.assert_array_equal(labels, np.eye(4)[y])                      # one-hot, in order
    expected = tf.image.resize(x, (32, 32), antialias=True).numpy()
    np.testing.assert_allclose(images, np.clip(expected, 0, 255), atol=1e-3)  # raw [0, 255] pixels


def test_array_dataset_training_augments_and_drops_remainder():
    x = np.zeros((10, 8, 8), "float32")
    x[:, :, :4] = 255.0                                   # left half white: a flip is visible
    ds = training.array_dataset(x, np.zeros(10, int), 8, num_classes=3, batch_size=4,
                                augment=training.Augment(flip=True, crop_scale=None), seed=1)
    batches = [b.numpy() for b, _ in ds]
    assert [len(b) for b in batches] == [4, 4]            # one traced step shape
    images = np.concatenate(batches)
    assert images.shape[-1] == 3                          # grayscale -> RGB
    left_white = images[:, :, :4].mean(axis=(1, 2, 3)) > images[:, :, 4:].mean(axis=(1, 2, 3))
    assert 0 < left_white.sum() < len(images)             # some flipped, some not


def test_array_dataset_errors_and_sizes():
    import keras
    with pytest.raises(ValueError, match="x must be"):
        training.array_dataset(np.zeros((4, 8)), np.zeros(4), 32)
    with pytest.raises(ValueError, match="y must be"):
        training.array_dataset(np.zeros((4, 8, 8, 3)), np.zeros(3), 32)
    with pytest.raises(ValueError, match="num_classes"):
        training.array_dataset(np.zeros((4, 8, 8, 3)), np.array([0, 1, 2, 5]), 32, num_classes=3)
    with pytest.raises(ValueError, match="size"):
        training.input_size(0)
    dynamic = keras.Sequential([keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="dynamic input size"):
        training.input_size(dynamic)
    with pytest.warns(UserWarning, match="preprocessing"):
        assert training.input_size(keras.Sequential([keras.Input((48, 64, 3)), keras.layers.Flatten()])) == (48, 64)
    with pytest.warns(UserWarning, match="raw"):
        training.array_dataset(np.full((4, 8, 8, 3), 0.5), np.zeros(4, int), 8)


def test_image_folder_labels_follow_subfolders(tmp_path):
    from PIL import Image
    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    for name, rgb in colours.items():
        (tmp_path / name).mkdir()
        for i in range(10):
            Image.new("RGB", (40 + i, 30), rgb).save(tmp_path / name / f"{i}.png")
    train, val = training.image_folder_dataset(str(tmp_path), 32, batch_size=4, validation_split=0.2)
    assert train.class_names == val.class_names == ["blue", "green", "red"]
    n_val = 0
    for ds in (train, val):
        for images, labels in ds:
            assert images.shape[1:] == (32, 32, 3)
            dominant = images.numpy().mean(axis=(1, 2)).argmax(-1)        # R, G or B
            channel_of_class = np.array([2, 1, 0])                        # blue, green, red
            np.testing.assert_array_equal(dominant, channel_of_class[labels.numpy().argmax(-1)])
            n_val += len(images) if ds is val else 0
    assert n_val == 6                                                     # 20 % of 30 files


def test_tfds_pipeline_offline_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        ds = training.tfds_dataset("mnist", "train", 32, batch_size=4, augment=training.Augment(flip=False))
        images, labels = next(iter(ds))
    assert images.shape == (4, 32, 32, 3) and labels.shape == (4, 10)     # grayscale -> RGB, one-hot
    assert ds.class_names[:3] == ["0", "1", "2"]
    assert 0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 255


def test_mixup_and_cutmix_mix_labels_as_they_mix_pixels():
    import tensorflow as tf
    values = np.array([0.0, 100.0, 200.0, 50.0], "float32")          # one constant per image
    images = tf.constant(np.broadcast_to(values[:, None, None, None], (4, 16, 16, 3)).copy())
    labels = tf.constant(np.eye(4, dtype="float32"))
    tf.random.set_seed(3)
    for kind in ("mixup", "cutmix"):
        fn = training.mix_batch(**{f"{kind}_alpha": 1.0})
        out_x, out_y = (t.numpy() for t in fn(images, labels))
        np.testing.assert_allclose(out_y.sum(-1), 1.0, rtol=1e-6)
        partner = values[::-1]
        lam = out_y[np.arange(4), np.arange(4)]                        # weight of each own label
        if kind == "mixup":
            np.testing.assert_allclose(out_x.mean(axis=(1, 2, 3)), lam * values + (1 - lam) * partner,
                                       rtol=1e-4, atol=1e-3)
        else:
            own = (out_x[..., 0] == values[:, None, None]).mean(axis=(1, 2))
            np.testing.assert_allclose(own, lam, atol=1e-6)             # pasted area = label weight

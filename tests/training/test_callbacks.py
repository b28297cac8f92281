"""Weight-decay annealing (applied inside the traced step), progressive resizing and resuming an
interrupted fit with BackupAndRestore."""
import keras
import numpy as np
import pytest

from keras_mobile import training


def zero_gradient_model():
    """Inputs are zero, so the kernel's gradient is zero: only weight decay moves it."""
    inp = keras.Input((4,))
    out = keras.layers.Dense(3, use_bias=False, kernel_initializer="ones", activation="softmax")(inp)
    return keras.Model(inp, out)


def test_weight_decay_annealing_values_reach_the_traced_step(tmp_path):
    model = zero_gradient_model()
    lr = 0.5
    model.compile(keras.optimizers.SGD(lr, weight_decay=0.2), "categorical_crossentropy")
    n_vars = len(model.optimizer.variables)
    wda = training.WeightDecayAnnealing(start=0.2, end=0.02)
    kernels = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: kernels.append(float(model.layers[-1].kernel.numpy()[0, 0])))
    x, y = np.zeros((8, 4), "float32"), np.eye(3, dtype="float32")[np.arange(8) % 3]
    hist = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[wda, record])

    expected_wd = [training.cosine_anneal(e, 3, 0.2, 0.02) for e in range(4)]
    assert [wd for _, wd in wda.history] == pytest.approx(expected_wd)
    assert hist.history["weight_decay"] == pytest.approx(expected_wd, rel=1e-6)
    shrink = np.array(kernels) / np.array([1.0] + kernels[:-1])      # one step per epoch
    np.testing.assert_allclose(shrink, [1 - wd * lr for wd in expected_wd], rtol=1e-5)
    # after training: a plain float again, no extra optimizer variable, .keras round trip works
    assert model.optimizer.weight_decay == pytest.approx(0.02)
    assert len(model.optimizer.variables) == n_vars
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").optimizer.weight_decay == pytest.approx(0.02)


def test_weight_decay_annealing_needs_weight_decay():
    model = zero_gradient_model()
    model.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
    with pytest.raises(ValueError, match="weight_decay"):
        model.fit(np.zeros((4, 4)), np.eye(3)[[0, 1, 2, 0]], verbose=0,
                  callbacks=[training.WeightDecayAnnealing()])


def test_progressive_resizing_sizes_and_pixels():
    cb = training.ProgressiveResizing(8, 32, epochs=4)
    assert [cb.size_at(e) for e in range(6)] == [8, 16, 24, 32, 32, 32]
    checker = (np.indices((32, 32)).sum(0) % 2 * 255.0).astype("float32")   # finest detail
    ds = training.array_dataset(np.stack([checker] * 4), np.zeros(4, int), 32, num_classes=2,
                                batch_size=4, augment=training.Augment(flip=False, crop_scale=None),
                                progressive=cb, cache=False)
    stds = []
    for epoch in range(4):
        cb.on_epoch_begin(epoch)
        images, _ = next(iter(ds))
        assert images.shape == (4, 32, 32, 3)          # always the model's static size
        stds.append(float(np.std(images.numpy())))
    assert stds[0] < 5 < 120 < stds[3]                 # 8 px: detail gone; 32 px: intact
    with pytest.raises(ValueError, match="start_size"):
        training.ProgressiveResizing(64, 32, 4)


def _resume_run(ckpt_dir, init, x, y, interrupt_after=None):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.set_weights(init)
    r = training.recipe("MobileOneS0", epochs=4, steps_per_epoch=2, batch_size=8, warmup_epochs=0)
    r.compile(model)
    callbacks = r.callbacks(str(ckpt_dir), monitor="loss")

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == interrupt_after:
                raise KeyboardInterrupt("simulated Colab disconnect")
    if interrupt_after is not None:
        callbacks.append(Interrupt())
    hist = model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    return model, hist


def test_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    init = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).get_weights()
    reference, _ = _resume_run(tmp_path / "a", init, x, y)

    with pytest.raises(KeyboardInterrupt):
        _resume_run(tmp_path / "b", init, x, y, interrupt_after=1)
    resumed, hist = _resume_run(tmp_path / "b", init, x, y)
    assert len(hist.history["loss"]) == 2                      # epochs 2 and 3 only
    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # SGD momentum + WD schedule restored
    assert (tmp_path / "b" / "best.weights.h5").exists()

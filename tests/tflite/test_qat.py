"""Native Keras 3 QAT: quantize_model -> fit -> a fully int8 TFLite file that computes what the
QAT Keras model computes (LiteRT in the loop, no interpreter mocks)."""

import keras
import numpy as np
import pytest

import keras_mobile
from keras_mobile.commands.demo import load_digits_rgb
from keras_mobile.tflite import export, quantize_model, run_tflite
from keras_mobile.tflite.inspect import make_interpreter
from keras_mobile.tflite.fake_quant import ActivationQuantizer, QuantConv, is_qat_model
from tests.benchmark_module import load_benchmark

SIZE = 32          # digits are 8x8: 32 px keeps every test fast
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def digits():
    return load_digits_rgb(SIZE)


def tiny_net():
    """Conv+BN+ReLU, depthwise, residual add, pooling, dense: the ops of a mobile net in a model
    that trains in seconds (the package models run in the slow tier)."""
    L = keras.layers
    inp = keras.Input((SIZE, SIZE, 3))
    x = L.Rescaling(1 / 127.5, -1.0)(inp)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, 2, "same", use_bias=False)(x)))
    y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)))
    y = L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(y))
    x = L.Add()([x, y])
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(32, 3, 2, "same", use_bias=False)(x)))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x), name="tiny")


def train_float(name, digits, epochs=3, size=SIZE):
    (x, y), _ = digits
    keras.utils.set_random_seed(0)
    m = tiny_net() if name == "tiny" else getattr(keras_mobile, name)(
        weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None)
    m.compile(keras.optimizers.Adam(2e-3), LOSS, metrics=["accuracy"])
    m.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return m


def train_qat(model, digits, epochs=2, **kwargs):
    """Returns the QAT model after `epochs` of training, its history and its test-set outputs
    before training (right after folding and calibration)."""
    (x, y), (xt, _) = digits
    q = quantize_model(model, calibration_data=x[:128], **kwargs)
    before = q.predict(xt, verbose=0)
    q.compile(keras.optimizers.Adam(1e-4), LOSS, metrics=["accuracy"])
    history = q.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return q, history.history, before


def agreement(q, path, xt):
    """Fraction of output values within one output quantization step, and top-1 agreement."""
    keras_out, tflite_out = q.predict(xt, verbose=0), run_tflite(path, xt)
    last = q.layers[-1]
    assert isinstance(last, ActivationQuantizer)
    step = float(last.scale())
    within_one_step = float((np.abs(tflite_out - keras_out) <= step * 1.001).mean())
    return within_one_step, float((tflite_out.argmax(-1) == keras_out.argmax(-1)).mean()), keras_out, tflite_out


@pytest.fixture(scope="module", params=["tiny", pytest.param("MobileNetV4ConvS", marks=pytest.mark.slow)])
def trained(request, digits):
    return train_float(request.param, digits)


@pytest.fixture(scope="module")
def qat(trained, digits):
    return train_qat(trained, digits)


def _accuracy(logits, y):
    return float((np.argmax(logits, -1) == y).mean())


def test_folded_model_computes_what_the_float_model_computes(qat, trained, digits):
    """Before any training the QAT model (BN folded into convs, int8 fake quantisation) must give
    the float model's answers: a wrong fold or a wrong range would not."""
    _, (xt, _) = digits
    q, _, out = qat
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in q.layers)
    assert sum(isinstance(layer, QuantConv) for layer in q.layers) >= (5 if q.name == "tiny" else 40)
    ref = trained.predict(xt, verbose=0)
    cosine = np.sum(ref * out, -1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(out, axis=-1))
    assert np.median(cosine) > 0.98, np.median(cosine)
    assert (ref.argmax(-1) == out.argmax(-1)).mean() >= 0.95


def test_qat_trains(qat, trained, digits):
    _, (xt, yt) = digits
    q, history, _ = qat
    assert history["loss"][-1] < history["loss"][0]
    assert _accuracy(q.predict(xt, verbose=0), yt) >= _accuracy(trained.predict(xt, verbose=0), yt) - 0.03


def test_qat_export_is_fully_int8_and_matches_keras_within_one_step(tmp_path, qat, digits):
    _, (xt, yt) = digits
    q, _, _ = qat
    path = tmp_path / "qat.tflite"
    report = export(q, path, "int8")          # no representative data: the QAT ranges are the scales
    assert report.fully_integer, report.float_ops
    assert report.ops["DEPTHWISE_CONV_2D"] >= 1 and report.ops["QUANTIZE"] == 1
    assert report.inputs[0].dtype == "uint8"
    within_one_step, top1, keras_out, tflite_out = agreement(q, path, np.round(xt))
    assert within_one_step >= 0.99, within_one_step          # measured 0.998
    assert top1 >= 0.99
    assert abs(_accuracy(tflite_out, yt) - _accuracy(keras_out, yt)) <= 0.01


def test_qat_export_ends_in_a_float_softmax_on_the_dequantized_logits(tmp_path, digits):
    """A QAT classifier with softmax scores gets the PTQ files' tail (tflite/int8_tail.py): the
    int8 logits are dequantized and a float SOFTMAX (which XNNPACK delegates) computes the scores,
    so the file outputs the exact softmax of the logits the QAT Keras model computes (not an int8
    approximation in 1/256 steps)."""
    (x, y), (xt, _) = digits
    keras.utils.set_random_seed(0)
    net = tiny_net()
    model = keras.Model(net.input, keras.layers.Softmax(name="scores")(net.output))
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    q = quantize_model(model, calibration_data=x[:128])
    report = export(q, tmp_path / "qat_softmax.tflite", "int8")
    assert report.fully_integer, report.float_ops
    it = make_interpreter(report.path, delegates=False)
    ops = it._get_ops_details()
    assert [o["op_name"] for o in ops].count("SOFTMAX") == 1
    assert [o["op_name"] for o in ops[-2:]] == ["DEQUANTIZE", "SOFTMAX"]
    dtypes = {d["index"]: d["dtype"] for d in it.get_tensor_details()}
    assert dtypes[ops[-1]["inputs"][0]] == np.float32 and dtypes[ops[-1]["outputs"][0]] == np.float32
    assert report.delegate_partitions == 1, report.undelegated_ops
    xt = np.round(xt)
    logits = keras.Model(q.input, q.get_layer("scores").input).predict(xt, verbose=0)
    probs = run_tflite(report.path, xt)
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    keras_probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    # the int8 logits are the Keras fake-quant logits to one step on ~all values (see above)
    err = np.abs(probs - keras_probs).max(-1)
    assert np.median(err) < 0.01 and (probs.argmax(-1) == keras_probs.argmax(-1)).mean() >= 0.99, np.median(err)


@pytest.mark.slow
def test_hard_swish_and_squeeze_excite_qat_export(tmp_path):
    """MobileNetV3Small: hard-swish, SE (MEAN, hard-sigmoid, MUL) all int8, same answers as the
    QAT Keras model. TFLite's int8 HARD_SWISH kernel (16-bit fixed point) is one step off float
    hard-swish on ~1 % of values and 50 layers amplify that (measured 96 % of logits within one
    step at 64 px); hard_swish="mul" exports integer ADD/MUL ops that round like the fake-quant
    and keeps >= 99 % within one step (measured 99.7 %). How far a run drifts depends on the
    trained state: one 32 px run gave 82 % native / 89 % mul (there the int8 ADD+RELU6 of a
    hard-sigmoid gate rounds differently on 2 % of values), another 99.75 % mul; this test pins
    the 64 px setting."""
    digits = load_digits_rgb(64)
    _, (xt, yt) = digits
    model = train_float("MobileNetV3Small", digits, epochs=4, size=64)
    for mode, bar in (("native", 0.9), ("mul", 0.99)):
        q, _, _ = train_qat(model, digits, hard_swish=mode)
        report = export(q, tmp_path / f"v3s_{mode}.tflite", "int8")
        assert report.fully_integer, report.float_ops
        assert report.ops["MEAN"] >= 5 and report.ops["MUL"] >= 9
        assert report.ops.get("HARD_SWISH", 0) == (19 if mode == "native" else 0)
        within_one_step, top1, keras_out, tflite_out = agreement(q, tmp_path / f"v3s_{mode}.tflite", np.round(xt))
        assert top1 >= 0.98, (mode, top1)
        assert abs(_accuracy(tflite_out, yt) - _accuracy(keras_out, yt)) <= 0.01
        assert within_one_step >= bar, (mode, within_one_step)


@pytest.mark.slow
def test_qat_wins_back_the_accuracy_int8_ptq_loses(tmp_path):
    """benchmarks/qat_vs_ptq.py, seed 0 (~10 min on 2 cores): MobileNetV3Small at 48 px trained 8
    epochs on hard digits, then from the same weights 2 more epochs either in float (control, then
    int8 PTQ) or quantization-aware (then int8 export); accuracies of the int8 files in LiteRT on
    10,000 unseen images. Measured (seeds 0/1/2): PTQ loses 1.35/1.33/0.59 points, QAT int8 beats
    the control's PTQ by 0.90/0.93/0.34 (benchmarks/results/qat_vs_ptq.md; 1.01/1.15/0.57 with
    hard_swish="native"). The bars leave room for run-to-run noise (paired standard error ~0.25
    points)."""
    from keras_mobile.data.digits import hard_digits
    bench = load_benchmark("qat_vs_ptq")
    args = bench.parse_args([])
    r = bench.run_seed(args, 0, hard_digits(args.train, 10000, args.size, seed=0), str(tmp_path))
    acc, loss, gain = r["accuracy"], r["control_ptq_loss"]["mean"], r["qat_gain_over_control_ptq"]["mean"]
    assert acc["control_float"] >= 0.7, acc                  # a trained model, far from saturated
    # a PTQ collapse must fail (issue 15: 38.8 % / 16.4 % PTQ vs ~79 % float once passed this test)
    assert r["ptq_loss"]["mean"] <= 0.015 and loss <= 0.015, (r["ptq_loss"], loss, acc)
    assert gain >= 0.5 * loss, (gain, loss, acc)             # QAT wins most of any PTQ loss back
    assert abs(acc["qat_int8"] - acc["qat_keras"]) <= 0.005, acc


def test_hard_swish_exports_as_integer_mul_by_default_and_tracks_keras(tmp_path, digits):
    """The default (hard_swish="mul") on a small hard-swish net: no HARD_SWISH op, the file within
    one step of Keras."""
    (x, y), (xt, _) = digits
    keras.utils.set_random_seed(1)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 127.5, -1.0)(inp)
    for filters in (16, 32):
        h = keras.layers.Conv2D(filters, 3, 2, "same", use_bias=False)(h)
        h = keras.layers.Activation("hard_silu")(keras.layers.BatchNormalization()(h))
    m = keras.Model(inp, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(h)))
    m.compile(keras.optimizers.Adam(3e-3), LOSS)
    m.fit(x, y, batch_size=64, epochs=2, verbose=0)
    q, _, _ = train_qat(m, digits, epochs=1)
    report = export(q, tmp_path / "hs.tflite", "int8")
    assert report.fully_integer, report.float_ops
    assert "HARD_SWISH" not in report.ops and report.ops["MUL"] >= 4
    within_one_step, top1, _, _ = agreement(q, tmp_path / "hs.tflite", np.round(xt))
    assert within_one_step >= 0.99 and top1 >= 0.99, (within_one_step, top1)


def test_qat_model_round_trips_through_a_keras_file(tmp_path, qat, digits):
    _, (xt, _) = digits
    q, _, _ = qat
    q.save(tmp_path / "qat.keras")
    loaded = keras.models.load_model(tmp_path / "qat.keras")
    np.testing.assert_array_equal(loaded.predict(xt[:16], verbose=0), q.predict(xt[:16], verbose=0))
    assert is_qat_model(loaded)                   # so export needs no representative data
    assert [w.shape for w in loaded.weights] == [w.shape for w in q.weights]


def test_activation_quantizer_snaps_to_its_int8_grid():
    aq = ActivationQuantizer(ema_decay=0.5)
    x = np.linspace(-1.0, 3.0, 101, dtype="float32").reshape(1, -1)
    aq(x, training=True)                          # the first batch sets the range
    lo, hi = float(aq.min_value.numpy()), float(aq.max_value.numpy())
    assert (lo, hi) == (-1.0, 3.0)
    y = np.asarray(aq(x, training=False))
    step = (hi - lo) / 255
    levels = y / step                             # the grid is shifted so that 0 is a level
    assert np.abs(levels - np.round(levels)).max() < 1e-3
    assert np.abs(y - x).max() <= step / 2 + 1e-6 and len(np.unique(np.round(levels))) == 101
    aq(x * 3.0, training=True)                    # then an exponential moving average
    assert abs(float(aq.max_value.numpy()) - 6.0) < 1e-6 and abs(float(aq.min_value.numpy()) + 2.0) < 1e-6


def test_bad_input_raises():
    inp = keras.Input((8, 8, 3))
    seq = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="functional model"):
        quantize_model(seq)
    m = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp))
    with pytest.raises(ValueError, match="input_range"):
        quantize_model(m, input_range=(1.0, 2.0))
    with pytest.raises(ValueError, match="hard_swish"):
        quantize_model(m, hard_swish="lut")
    with pytest.raises(ValueError, match="already quantization-aware"):
        quantize_model(quantize_model(m))
    shared = keras.layers.Conv2D(3, 1)
    twice = keras.Model(inp, shared(shared(inp)))
    with pytest.raises(ValueError, match="more than once"):
        quantize_model(twice)
    with pytest.raises(ValueError, match="ema_decay"):
        ActivationQuantizer(ema_decay=1.0)


def test_calibration_data_is_checked_before_any_range_changes():
    """calibrate() runs export's data checks first: images scaled to [0, 1] for a model that takes
    raw [0, 255] pixels, or samples of the wrong shape, raise and leave the learned ranges as
    they were."""
    from keras_mobile.tflite.qat import calibrate
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocessing")(inp)
    m = keras.Model(inp, keras.layers.ReLU()(keras.layers.Conv2D(4, 3)(x)))
    pixels = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    q = quantize_model(m, calibration_data=pixels)
    before = [w.copy() for w in q.get_weights()]
    with pytest.raises(ValueError, match=r"raw \[0, 255\]"):
        calibrate(q, pixels / 255.0)
    with pytest.raises(ValueError, match="shape"):
        calibrate(q, np.zeros((4, 9, 9, 3), "float32"))
    assert all(np.array_equal(a, b) for a, b in zip(before, q.get_weights()))
    assert calibrate(q, pixels, progress=False) == 16

"""Float islands (tflite/float_islands.py): the int8 ops XNNPACK refuses run as DEQUANTIZE -> float
op -> QUANTIZE, so the default int8 file is one XNNPACK partition and computes what the plain
int8 file computes (up to the int8 rounding the islands skip)."""
import keras
import numpy as np
import pytest

import keras_mobile
from keras_mobile.tflite import export, run_tflite
from keras_mobile.tflite.flatbuffer import op_name, read_model, write_model
from keras_mobile.tflite.float_islands import float_islands, refusal_reason, to_float
from keras_mobile.tflite.inspect import make_interpreter, op_details, xnnpack_partitions
from keras_mobile.tflite.representative import set_bn_statistics


def tiny_attention(softmax=False):
    """GELU, LayerNorm (SQUARED_DIFFERENCE, RSQRT), attention (BATCH_MATMUL, SOFTMAX): the int8
    ops of the attention models that XNNPACK refuses, in a model that converts in seconds; with
    `softmax`, the same weights and a classifier Softmax at the end."""
    keras.utils.set_random_seed(0)
    L = keras.layers
    x = keras.Input((16, 16, 3))
    h = L.Conv2D(16, 3, strides=2, padding="same")(L.Rescaling(1 / 255)(x))
    h = L.Reshape((64, 16))(L.Activation("gelu")(h))
    n = L.LayerNormalization()(h)
    q, k, v = (L.Dense(16)(n) for _ in range(3))
    scores = L.Softmax()(L.Lambda(lambda t: keras.ops.matmul(t[0], keras.ops.transpose(t[1], (0, 2, 1))))([q, k]))
    h = L.Add()([h, L.Lambda(lambda t: keras.ops.matmul(t[0], t[1]))([scores, v])])
    logits = L.Dense(10)(L.GlobalAveragePooling1D()(h))
    return keras.Model(x, L.Softmax()(logits) if softmax else logits)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    model = tiny_attention()
    x = np.random.default_rng(0).uniform(0, 255, (24, 16, 16, 3)).astype("float32")
    folder = tmp_path_factory.mktemp("islands")
    islands = export(model, folder / "islands.tflite", "int8", **_calibration(x))
    plain = export(model, folder / "plain.tflite", "int8", float_islands=False, **_calibration(x))
    return model, np.round(x[16:]), islands, plain


def _calibration(x):
    return dict(representative_data=x[:16], num_calibration_steps=16, progress=False)


def test_islands_make_one_partition_and_keep_the_int8_answers(files):
    model, x, islands, plain = files
    assert plain.delegate_partitions > 1, plain.float_ops
    assert {"BATCH_MATMUL", "SOFTMAX", "GELU"} <= {op for _, op in plain.undelegated_ops}
    assert islands.delegate_partitions == 1 and islands.undelegated_ops == [(0, "QUANTIZE")], islands.undelegated_ops
    keras_out = model.predict(x, verbose=0)
    a, b = run_tflite(plain.path, x), run_tflite(islands.path, x)
    span = np.abs(keras_out).max()
    # the islands skip int8 roundings, so they stay as close to Keras as the plain int8 file
    assert np.abs(a - b).max() <= 0.1 * span, (np.abs(a - b).max(), span)
    assert np.abs(b - keras_out).max() <= max(1.5 * np.abs(a - keras_out).max(), 0.02 * span)


def test_report_names_each_island_and_why(files):
    _, _, islands, plain = files
    named = islands.extra["float_islands"]
    assert any("GELU: XNNPACK has no int8 GELU kernel" in s for s in named), named
    assert any("SOFTMAX: XNNPACK has no int8 SOFTMAX kernel" in s for s in named), named
    assert sum("BATCH_MATMUL: XNNPACK's int8 BATCH_MATMUL needs zero-point 0 on its second input" in s
               for s in named) == 2, named
    assert "float islands" in islands.extra["lowering"] and "float_islands" in str(islands)
    ops = op_details(make_interpreter(islands.path, delegates=False))
    for entry in named:        # each island sits at the index it is reported at, between DEQUANTIZE/QUANTIZE
        index, op = entry[1:].split(":")[0].split()
        assert ops[int(index)]["op_name"] == op
    # opt-out: the converter's graph, every op int8
    assert "float_islands" not in plain.extra and "float islands" not in plain.extra["lowering"]


def test_constants_of_an_island_are_stored_dequantized(files):
    """A FULLY_CONNECTED made an island reads its per-channel int8 weights and int32 bias as float
    constants: same answers to float rounding of the int8 accumulation."""
    _, x, _, plain = files
    model, data = read_model(plain.path)
    fc = [i for i, op in enumerate(model.subgraphs[0].operators) if op_name(model, op) == "FULLY_CONNECTED"]
    rewritten, islands = to_float(model, {i: "test" for i in fc}, len(data))
    assert [op for _, op, _ in islands] == ["FULLY_CONNECTED"] * len(fc)
    it = make_interpreter(rewritten)
    dtypes = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
    plain_it = make_interpreter(rewritten, delegates=False)
    fcs = [o for o in op_details(plain_it) if o["op_name"] == "FULLY_CONNECTED"]
    assert all(dtypes[t] == np.float32 for o in fcs for t in list(o["inputs"]) + list(o["outputs"]) if t >= 0)
    out, ref = run_tflite("rewritten", x, interpreter=it), run_tflite(plain.path, x)
    assert np.abs(out - ref).max() <= 0.05 * np.abs(ref).max(), (np.abs(out - ref).max(), np.abs(ref).max())


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("MobileNetV4HybridM", 128), ("EfficientFormerL1", 224)])
def test_attention_models_are_one_partition(tmp_path, name, size):
    """The package's attention models: the default int8 file is one XNNPACK partition and is as close
    to Keras as the int8 file without islands (EfficientFormer only takes 224 px: its attention biases)."""
    keras.utils.set_random_seed(0)
    model = getattr(keras_mobile, name)(weights=None, input_shape=(size, size, 3), classes=10,
                                        classifier_activation=None)
    x = np.random.default_rng(0).uniform(0, 255, (12, size, size, 3)).astype("float32")
    set_bn_statistics(model, x[:8])
    kw = dict(representative_data=x[:8], num_calibration_steps=8, progress=False)
    islands = export(model, tmp_path / "islands.tflite", "int8", **kw)
    plain = export(model, tmp_path / "plain.tflite", "int8", float_islands=False, **kw)
    assert plain.delegate_partitions > 1
    assert islands.delegate_partitions == 1, islands.undelegated_ops
    assert "AVERAGE_POOL_2D" not in islands.ops       # EfficientFormer's pool mixer: int8 depthwise conv
    x = np.round(x[8:])
    want, a, b = model.predict(x, verbose=0), run_tflite(plain.path, x), run_tflite(islands.path, x)
    plain_err, islands_err = np.abs(a - want).mean(), np.abs(b - want).mean()
    print(name, "mean |int8 - Keras|: plain", plain_err, "islands", islands_err, "span", np.abs(want).max())
    assert islands_err <= 1.25 * plain_err + 0.01 * np.abs(want).max()


def test_add_outside_xnnpack_scale_window_becomes_an_island(files):
    """An int8 ADD whose input/output scale ratio is below XNNPACK's 2^-10 (here: the residual ADD's
    output scale made 2^12 times coarser in the file) is refused by the delegate; the rewrite makes
    it an island and names the ratio."""
    _, _, _, plain = files
    model, data = read_model(plain.path)
    sg = model.subgraphs[0]

    def constant(t):
        return len(model.buffers[sg.tensors[int(t)].buffer].data or [])
    index, add = next((i, op) for i, op in enumerate(sg.operators)
                      if op_name(model, op) == "ADD" and not any(constant(t) for t in op.inputs))
    q = sg.tensors[int(add.outputs[0])].quantization
    q.scale = [float(q.scale[0]) * 2.0 ** 12]
    coarse = write_model(model, len(data))
    assert (index, "ADD") in xnnpack_partitions(coarse)[1]
    rewritten, islands = float_islands(coarse)
    assert any(op == "ADD" and "scale ratios" in why and "outside XNNPACK's int8 ADD limits" in why
               and "not delegated either" not in why for _, op, why in islands), islands
    # the same ADD as calibrated is within the limits: a refusal would not be blamed on its scales
    model, _ = read_model(plain.path)
    assert "within its limits: reason not known" in refusal_reason(model, model.subgraphs[0].operators[index])
    assert xnnpack_partitions(rewritten) == (1, [(0, "QUANTIZE")])


def test_softmax_tail_and_islands_in_one_pass(tmp_path, files):
    """A classifier Softmax at the float output becomes the float tail (int8_tail) in the same rewrite
    as the islands (int8_rewrites.int8_rewrites): the islands are those of the model without the
    Softmax, the tail is no island, and the file computes what the two passes (tail at export, then
    float_islands) compute."""
    _, x, no_softmax, _ = files
    model = tiny_attention(softmax=True)
    calibration = np.random.default_rng(0).uniform(0, 255, (24, 16, 16, 3)).astype("float32")
    one = export(model, tmp_path / "one.tflite", "int8", **_calibration(calibration))
    tail_only = export(model, tmp_path / "tail.tflite", "int8", float_islands=False, **_calibration(calibration))
    two, two_islands = float_islands(tail_only.path)
    ops = [o["op_name"] for o in op_details(make_interpreter(one.path, delegates=False))]
    assert ops[-2:] == ["DEQUANTIZE", "SOFTMAX"] and one.delegate_partitions == 1, (ops, one.undelegated_ops)
    # the tail is not listed: the same islands as the model without the Softmax, by op and reason (the
    # converter may number two different models' ops differently: #27 vs #28 seen in CI)
    unnumbered = lambda islands: [entry.split(" ", 1)[1] for entry in islands]  # noqa: E731
    assert unnumbered(one.extra["float_islands"]) == unnumbered(no_softmax.extra["float_islands"])
    assert [f"#{i} {op}: {why}" for i, op, why in two_islands] == one.extra["float_islands"]
    assert one.extra["lowering"].count("int8 SOFTMAX -> DEQUANTIZE -> float SOFTMAX") == 1, one.extra["lowering"]
    out, want = run_tflite(one.path, x), model.predict(x, verbose=0)
    np.testing.assert_allclose(out, run_tflite("two", x, interpreter=make_interpreter(two)), atol=1e-6)
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-4) and np.abs(out - want).max() <= 0.03, np.abs(out - want).max()

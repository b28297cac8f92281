"""The default int8 file's hard-swish as x * gate (tflite/hard_swish_order.py): same results."""
import keras
import numpy as np

from keras_mobile.tflite.edgetpu_lowering import xnnpack_int8_friendly
from keras_mobile.tflite.export import converter_for, convert_quietly
from keras_mobile.tflite.flatbuffer import op_name, read_model
from keras_mobile.tflite.hard_swish_order import x_times_gate
from keras_mobile.tflite.inspect import make_interpreter


def _hard_swish_net():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Activation("hard_swish")(keras.layers.Conv2D(8, 3, padding="same")(inp))
    h = keras.layers.Conv2D(8, 1)(h)
    h = keras.layers.Activation("hard_swish")(h)          # a hard-swish feeding an ADD: the triple's end is read
    return keras.Model(inp, keras.layers.Add()([h, keras.layers.Conv2D(8, 1)(h)]))


def _run(data, x):
    it = make_interpreter(data)
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for s in x:
        it.set_tensor(d["index"], s[None])
        it.invoke()
        outs.append(it.get_tensor(o["index"]).copy())
    return np.concatenate(outs)


def test_x_times_gate_rewires_every_hard_swish_and_keeps_the_integers():
    """Converted as the default export does (hard-swish lowered for XNNPACK), then rewired: both
    hard-swishes end in MUL(x, relu6(x+3)/6), and the int8 outputs are identical to the converter's order."""
    model, _ = xnnpack_int8_friendly(_hard_swish_net())
    x = np.random.default_rng(0).standard_normal((24, 8, 8, 3)).astype("float32") * 2
    before = convert_quietly(converter_for(model, "int8", x[:16], "float32", "int8", 16, progress=False))
    after, n = x_times_gate(before)
    assert n == 2
    m, _ = read_model(after)
    ops = m.subgraphs[0].operators
    producer = {int(t): op for op in ops for t in op.outputs}

    def made_by(t, name):
        op = producer.get(int(t))
        return op if op is not None and op_name(m, op) == name else None
    gated = [(op, made_by(op.inputs[1], "MUL")) for op in ops if op_name(m, op) == "MUL" and made_by(op.inputs[1], "MUL")]
    adds = [made_by(gate.inputs[0], "ADD") for _, gate in gated]
    assert len(gated) == 2 and all(adds)                                  # MUL(?, relu6(x+3) / 6)
    assert all(int(op.inputs[0]) == int(add.inputs[0]) for (op, _), add in zip(gated, adds))   # x times it
    np.testing.assert_array_equal(_run(before, x[16:]), _run(after, x[16:]))


def test_files_without_the_triple_are_returned_as_they_are():
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, activation="relu")(inp))
    x = np.random.default_rng(0).standard_normal((8, 8, 8, 3)).astype("float32")
    data = convert_quietly(converter_for(model, "int8", x, "float32", "float32", 8, progress=False))
    out, n = x_times_gate(data)
    assert n == 0 and out == data


def test_a_triple_whose_integers_would_change_is_left_alone():
    """If x / 6 is not quantized at exactly x's scale / 6 (a calibrator that widened its range), the
    other order would round differently: that triple stays as the converter wrote it."""
    from keras_mobile.tflite.flatbuffer import write_model
    model, _ = xnnpack_int8_friendly(_hard_swish_net())
    x = np.random.default_rng(0).standard_normal((24, 8, 8, 3)).astype("float32") * 2
    data = convert_quietly(converter_for(model, "int8", x[:16], "float32", "int8", 16, progress=False))
    m, raw = read_model(data)
    sg = m.subgraphs[0]
    sixth = [op for op in sg.operators if op_name(m, op) == "MUL"
             and any(sg.tensors[int(t)].buffer and len(m.buffers[sg.tensors[int(t)].buffer].data or []) == 1 for t in op.inputs)]
    q = sg.tensors[int(sixth[0].outputs[0])].quantization
    q.scale = [float(q.scale[0]) * 1.01]
    out, n = x_times_gate(write_model(m, len(raw)))
    assert n == 1, n


def test_one_pass_rewrites_write_the_file_of_one_rewrite_after_another():
    """export's one pass (`int8_rewrites`: parsed once, XNNPACK's refusals asked of the converter's file,
    then hard-swish order, softmax tail and float islands, packed once) writes the bytes that the
    rewrites made one after another (each parsing and packing the file) write."""
    from keras_mobile.tflite.int8_rewrites import int8_rewrites
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Activation("gelu")(_hard_swish_net()(inp))         # int8 GELU: XNNPACK refuses it
    out = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    model, _ = xnnpack_int8_friendly(keras.Model(inp, out))
    x = np.random.default_rng(0).standard_normal((16, 8, 8, 3)).astype("float32") * 2
    data = convert_quietly(converter_for(model, "int8", x, "float32", "float32", 16, progress=False))
    one, reordered, tails, islands = int8_rewrites(data, hard_swish=True)
    gated, n = x_times_gate(data)
    two, _, two_tails, two_islands = int8_rewrites(gated)
    assert (reordered, tails) == (n, two_tails) == (2, 1) and [op for _, op, _ in islands] == ["GELU"]
    assert one == two and islands == two_islands

"""The default int8 file's hard-swish as x * gate: y = x * (relu6(x + 3) / 6) in its int8 MULs.

The default PTQ export writes hard-swish as relu6(x + 3) * (x / 6) (`edgetpu_lowering`): the
converter would fuse the gate form back into a HARD_SWISH op, which XNNPACK does not run in int8.
Its int8 ops are ADD(x, 3)+RELU6 -> a, MUL(x, 1/6) -> m, MUL(a, m). With the same three op kinds
wired as QAT files have them, ADD(x, 3)+RELU6 -> a, MUL(a, 1/6) -> g, MUL(x, g), XNNPACK ran a
MobileNetV3Small file 20-25 % faster (the ops take the same time one by one, so it is a whole-graph
effect of XNNPACK; measured, not explained: benchmarks/int8_ptq_forms.py). `x_times_gate`
rewires the converted file; the integers are the same: m is x requantized to scale s_x / 6 with
x's zero point (its calibrated range is x's / 6), and g becomes a requantized the same way, so the
last MUL multiplies the same two integer factors in the other order.
"""
import numpy as np

from keras_mobile.tflite.flatbuffer import TFLiteGraph
from keras_mobile.tflite.float_islands import _dequantized, _quant

_RELU6 = 3          # schema ActivationFunctionType.RELU6


def _constant(model, sg, t):
    """The float value of a scalar int8 constant tensor, or None."""
    tensor = sg.tensors[t]
    data = model.buffers[tensor.buffer].data if tensor.buffer else None
    if data is None or not len(data) or _quant(tensor) is None or int(np.prod(np.asarray(tensor.shape if tensor.shape is not None else [], np.int64))) != 1:
        return None
    return float(_dequantized(tensor, data).reshape(-1)[0])


def _scalar_operand(model, sg, op, value, tolerance):
    """The non-constant input of a binary op whose other input is a scalar constant ~`value`, or None."""
    a, b = (int(t) for t in op.inputs)
    for x, k in ((a, b), (b, a)):
        c = _constant(model, sg, k)
        if c is not None and abs(c - value) <= tolerance * abs(value):
            return x, k
    return None


def x_times_gate(tflite):
    """Returns (tflite bytes, n): the int8 hard-swish triples ADD(x, 3)+RELU6 -> a, MUL(x, 1/6) -> m,
    MUL(a, m) rewired to MUL(a, 1/6) -> m, MUL(x, m), m quantized as a with scale s_a / 6; n triples
    changed (the input bytes when n is 0)."""
    graph = TFLiteGraph.read(tflite)
    n = rewire(graph)
    return graph.pack(), n


def rewire(graph):
    """`x_times_gate` on a parsed file (a `flatbuffer.TFLiteGraph`, changed in place): returns n."""
    model, sg = graph.model, graph.subgraph
    names, producer, readers = graph.op_names(), graph.producers(), graph.readers()
    graph_outputs = {int(t) for t in sg.outputs}
    triples = []
    for i, last in enumerate(sg.operators):
        if names[i] != "MUL" or len(last.inputs) != 2 or _fused(last):
            continue
        pair = [producer.get(int(t)) for t in last.inputs]
        if None in pair or sorted(names[j] for j in pair) != ["ADD", "MUL"]:
            continue
        add, mul = (sg.operators[j] for j in sorted(pair, key=lambda j: names[j]))     # "ADD" < "MUL"
        a, m = int(add.outputs[0]), int(mul.outputs[0])
        gate = _scalar_operand(model, sg, add, 3.0, 1e-2)
        sixth = _scalar_operand(model, sg, mul, 1.0 / 6.0, 1e-2)
        if gate is None or sixth is None or gate[0] != sixth[0] or _fused(mul) \
                or getattr(add.builtinOptions, "fusedActivationFunction", None) != _RELU6 \
                or readers.get(a) != [i] or readers.get(m) != [i] or {a, m} & graph_outputs \
                or _quant(sg.tensors[a]) is None or _quant(sg.tensors[m]) is None \
                or not _exact(sg, sixth[0], m, _constant(model, sg, sixth[1])):
            continue
        triples.append((add, mul, last, a, m) + sixth)
    ops = sg.operators
    for add, mul, last, a, m, x, k in triples:
        qa, qm = sg.tensors[a].quantization, sg.tensors[m].quantization
        mul.inputs, last.inputs = [a, k], [x, m]
        qm.scale, qm.zeroPoint, qm.min, qm.max = [float(qa.scale[0]) / 6.0], [int(qa.zeroPoint[0])], None, None
        i_add, i_mul = (next(j for j, o in enumerate(ops) if o is op) for op in (add, mul))
        if i_mul < i_add:           # MUL now reads the ADD's output: the ADD (reading only x) moves up
            ops.insert(i_mul, ops.pop(i_add))
    graph.changed |= bool(triples)
    return len(triples)


def _exact(sg, x, m, k):
    """True when the rewiring keeps the integers: m is x requantized to scale s_x / 6 with x's zero
    point, and the constant dequantizes to 1/6, both to float32 rounding (the last MUL's
    requantization multiplier may then differ in its last bits, which could move an output lying on
    a rounding tie by one step; identical on every file tested). Otherwise (e.g. a calibrator
    that widened m's range) the triple is left as the converter wrote it."""
    qx, qm = sg.tensors[x].quantization, sg.tensors[m].quantization
    if _quant(sg.tensors[x]) is None or len(qx.scale) != 1 or len(qm.scale) != 1:
        return False
    sx, sm = float(qx.scale[0]), float(qm.scale[0])
    return (abs(sm - sx / 6.0) <= 1e-6 * sm and int(qm.zeroPoint[0]) == int(qx.zeroPoint[0])
            and abs(6.0 * k - 1.0) <= 1e-6)


def _fused(op):
    return getattr(op.builtinOptions, "fusedActivationFunction", 0) not in (0, None)

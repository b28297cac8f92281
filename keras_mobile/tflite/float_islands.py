"""Float islands: int8 ops that LiteRT's XNNPACK delegate refuses run as DEQUANTIZE -> float op ->
QUANTIZE inside an otherwise int8 file, so XNNPACK takes the whole graph.

XNNPACK has no int8 kernel for AVERAGE_POOL_2D, GELU, SOFTMAX, RSQRT, SQUARED_DIFFERENCE and
HARD_SWISH, takes int8 BATCH_MATMUL only when its second input has zero-point 0, and int8
ADD/SUB/MUL only within its input/output scale-ratio limits (measured one op at a time by
`benchmarks/xnnpack_int8_ops.py`, results in benchmarks/results/xnnpack_int8_ops.md). Each refused
op leaves LiteRT's reference kernel between two delegate partitions: an attention model's int8
file falls into 18 (MobileNetV4HybridM) to 150 (EfficientFormerL7) partitions. Every float op of
those kinds is delegated, and XNNPACK also
runs the int8<->float32 converts, so rewriting a refused op as a float island keeps the whole
graph in one partition. Neighbouring islands share their float tensors (no QUANTIZE/DEQUANTIZE
pair between them), which only removes a rounding step.

`float_islands` asks the installed LiteRT which ops its XNNPACK delegate left out; `to_float` is the
rewrite, also of the classifier tail (`int8_tail`); `int8_rewrites.int8_rewrites` (used by `export`)
makes both, after the hard-swish order, from one parse and one pack of the file."""
import numpy as np

from keras_mobile.tflite.flatbuffer import TFLiteGraph, op_name, write_model
from keras_mobile.tflite.metadata_format import _schema

# int8 ops XNNPACK runs only in float (benchmarks/results/xnnpack_int8_ops.md)
FLOAT_ONLY = ("AVERAGE_POOL_2D", "GELU", "SOFTMAX", "RSQRT", "SQUARED_DIFFERENCE", "HARD_SWISH")
# XNNPACK's int8 binary ops: the input/output (ADD, SUB) or product/output (MUL) scale ratios it
# accepts, [low, high) (measured in the same benchmark; google/XNNPACK binary-elementwise-nd.c)
RATIO_LIMITS = {"ADD": (2.0 ** -10, 2.0 ** 8), "SUB": (2.0 ** -10, 2.0 ** 8), "MUL": (2.0 ** -16, 2.0 ** 8)}
# ops whose float form XNNPACK delegates (measured in the same benchmark): an island of one of these
# is worth making
FLOAT_DELEGATED = FLOAT_ONLY + ("ADD", "SUB", "MUL", "BATCH_MATMUL", "MEAN", "LOGISTIC", "TANH", "CONCATENATION",
                                "TRANSPOSE", "MAX_POOL_2D", "PAD", "RESIZE_BILINEAR")


def _quant(t):
    q = t.quantization
    if q is None or q.scale is None or not len(q.scale):
        return None
    zp = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0] * len(q.scale)
    return np.asarray(q.scale, np.float64), np.asarray(zp, np.int64), int(q.quantizedDimension or 0)


def _scale(sg, t):
    q = _quant(sg.tensors[int(t)])
    return float(q[0][0]) if q else 0.0


def refusal_reason(model, op):
    """Why XNNPACK leaves this int8 op out (the measured rules of benchmarks/xnnpack_int8_ops.py)."""
    sg = model.subgraphs[0]
    name = op_name(model, op)
    ins = [int(t) for t in op.inputs if t >= 0]
    out = _scale(sg, op.outputs[0])
    if name in FLOAT_ONLY:
        return f"XNNPACK has no int8 {name} kernel"
    if name == "BATCH_MATMUL":
        q = _quant(sg.tensors[ins[1]])
        zp = int(q[1][0]) if q else "?"
        return f"XNNPACK's int8 BATCH_MATMUL needs zero-point 0 on its second input (it is {zp})"
    if name in RATIO_LIMITS and out:
        low, high = RATIO_LIMITS[name]
        ratios = [_scale(sg, ins[0]) * _scale(sg, ins[1]) / out] if name == "MUL" else [_scale(sg, t) / out for t in ins]
        what = "product/output scale ratio" if name == "MUL" else "input/output scale ratios"
        shown = ", ".join(f"{r:.3g}" for r in ratios)
        if any(not low <= r < high for r in ratios):
            return f"{what} {shown} outside XNNPACK's int8 {name} limits [{low:.3g}, {high:.3g})"
        return f"XNNPACK does not delegate this int8 {name} ({what} {shown} are within its limits: reason not known)"
    return f"XNNPACK does not delegate this int8 {name}"


def refused_int8_ops(graph, outside):
    """{operator index: reason} of the int8 ops of a parsed file (a `flatbuffer.TFLiteGraph`) that
    XNNPACK (as installed) leaves out of its partitions and would take as float ops. outside: the
    ops it left out, [(operator object of `graph`, op name)] (`inspect.xnnpack_partitions`)."""
    sg = graph.subgraph
    index = {id(op): i for i, op in enumerate(sg.operators)}
    int8 = _schema().TensorType.INT8
    picks = {}
    for op, name in outside:
        if name in FLOAT_DELEGATED and sg.tensors[int(op.inputs[0])].type == int8 \
                and all(sg.tensors[int(o)].type == int8 for o in op.outputs):
            picks[index[id(op)]] = refusal_reason(graph.model, op)
    return picks


def float_islands(tflite):
    """Returns (tflite bytes, islands): every int8 op XNNPACK refuses (and runs in float) rewritten
    as a float island, islands = [(operator index in the new file, op, reason)]; the input bytes
    and [] when there is none."""
    from keras_mobile.tflite.int8_rewrites import int8_rewrites
    data, _, _, islands = int8_rewrites(tflite, softmax_tail=False)
    return data, islands


def summary(islands):
    """One line on the islands of `float_islands` (op counts), for the export's change notes."""
    from collections import Counter
    counts = Counter(op for _, op, _ in islands)
    return (f"{len(islands)} int8 op(s) XNNPACK refuses run as float islands (DEQUANTIZE -> float op -> "
            f"QUANTIZE; XNNPACK delegates them): " + ", ".join(f"{op} x{n}" for op, n in counts.most_common()))


def to_float(model, picks, size_hint=0):
    """Rewrites the operators `picks` ({index: reason}) of `model` (a schema ModelT, changed in
    place) to compute in float32: their quantized inputs are dequantized (constants once, in the
    file), their outputs quantized back unless every reader is another picked op or a single
    DEQUANTIZE (then the float op writes that DEQUANTIZE's output, which is dropped). Returns
    (tflite bytes, [(new operator index, op name, reason)])."""
    islands = make_islands(TFLiteGraph(model), picks)
    return write_model(model, size_hint), islands


def make_islands(graph, picks):
    """`to_float` on a parsed file (a `flatbuffer.TFLiteGraph`, changed in place): returns
    [(new operator index, op name, reason)]."""
    schema, model, sg = _schema(), graph.model, graph.subgraph
    ops = list(sg.operators)
    readers, names = graph.readers(), graph.op_names()
    outputs = {int(t) for t in sg.outputs}
    codes = _OpCodes(model)
    as_float, dropped, new_ops, islands = {}, set(), [], []

    def float_tensor(t):
        src = sg.tensors[t]
        f = schema.TensorT()
        f.shape, f.shapeSignature, f.type = src.shape, src.shapeSignature, schema.TensorType.FLOAT32
        f.name = (src.name or b"t") + b"/float"
        f.buffer = 0
        sg.tensors.append(f)
        return len(sg.tensors) - 1

    def float_input(t):
        if t not in as_float:
            if _quant(sg.tensors[t]) is None:      # shapes, axes: used as they are
                return t
            f = float_tensor(t)
            data = model.buffers[sg.tensors[t].buffer].data if sg.tensors[t].buffer else None
            if data is not None and len(data):     # a constant: store it dequantized
                sg.tensors[f].buffer = _add_buffer(model, _dequantized(sg.tensors[t], data))
            else:
                new_ops.append(codes.op("DEQUANTIZE", [t], [f]))
            as_float[t] = f
        return as_float[t]

    for i, op in enumerate(ops):
        if i in dropped:
            continue
        if i not in picks:
            new_ops.append(op)
            continue
        op.inputs = [float_input(int(t)) if t >= 0 else t for t in op.inputs]
        new_ops.append(op)
        islands.append((len(new_ops) - 1, names[i], picks[i]))
        later = []
        for k, o in enumerate(int(t) for t in op.outputs):
            rest = [r for r in readers.get(o, []) if r not in picks]
            dq = [r for r in rest if names[r] == "DEQUANTIZE"]
            if o not in outputs and len(rest) == len(dq) <= 1:
                target = int(ops[dq[0]].outputs[0]) if dq else float_tensor(o)
                dropped.update(dq)
            else:
                target = float_tensor(o)
                later.append(codes.op("QUANTIZE", [target], [o]))
            op.outputs[k] = target
            as_float[o] = target
        new_ops.extend(later)
    sg.operators = new_ops
    graph.changed |= bool(picks)
    return islands


class _OpCodes:
    """Operator codes of a model, added when missing (DEQUANTIZE of int8 is version 2)."""
    VERSIONS = {"DEQUANTIZE": 2, "QUANTIZE": 1}

    def __init__(self, model):
        self.model, self.schema = model, _schema()

    def op(self, name, inputs, outputs):
        code = getattr(self.schema.BuiltinOperator, name)
        codes = self.model.operatorCodes
        index = next((i for i, c in enumerate(codes) if max(c.builtinCode, c.deprecatedBuiltinCode) == code), None)
        if index is None:
            c = self.schema.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), self.VERSIONS[name]
            codes.append(c)
            index = len(codes) - 1
        op = self.schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, list(inputs), list(outputs)
        return op


def _dequantized(tensor, data):
    schema = _schema()
    dtype = {schema.TensorType.INT8: np.int8, schema.TensorType.UINT8: np.uint8,
             schema.TensorType.INT16: np.int16, schema.TensorType.INT32: np.int32}[tensor.type]
    q = np.frombuffer(bytes(bytearray(data)), dtype).reshape([int(d) for d in tensor.shape]).astype(np.float64)
    scale, zp, axis = _quant(tensor)
    if len(scale) > 1:                            # per channel along quantizedDimension
        shape = [1] * q.ndim
        shape[axis] = len(scale)
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q - zp) * scale).astype(np.float32)


def _add_buffer(model, array):
    b = _schema().BufferT()
    b.data = np.frombuffer(array.tobytes(), np.uint8)
    model.buffers.append(b)
    return len(model.buffers) - 1

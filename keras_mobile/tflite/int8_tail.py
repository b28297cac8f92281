"""The classifier tail of a full-integer file with float output: SOFTMAX after DEQUANTIZE.

The converter quantizes a final softmax to int8 (SOFTMAX int8 -> DEQUANTIZE). LiteRT's XNNPACK
delegate does not take an int8 SOFTMAX, so that one op runs on the reference kernel as a
second delegate partition at the end of the graph. With float scores the softmax can just as
well run on the dequantized logits (DEQUANTIZE -> SOFTMAX float32), which XNNPACK delegates:
one partition, and the scores are the exact softmax of the int8 logits instead of an int8
approximation of it. MediaPipe Tasks read the float score tensor as before (same output tensor,
same shape). `export` applies it to every int8 file with float output, PTQ and QAT alike.
Integer outputs (uint8/int8 scores, e.g. the Edge TPU file) keep the int8 SOFTMAX.
"""
import flatbuffers

from keras_mobile.tflite.metadata_format import _model_bytes, _schema


def _code(model, op):
    c = model.operatorCodes[op.opcodeIndex]
    return max(c.builtinCode, c.deprecatedBuiltinCode)


def float_softmax_tail(tflite):
    """Returns (tflite bytes, n) with every graph output made by int8 SOFTMAX -> DEQUANTIZE
    rewritten as DEQUANTIZE -> float SOFTMAX (n of them; the input bytes when n is 0)."""
    schema = _schema()
    data = _model_bytes(tflite)
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = model.subgraphs[0]
    ops = sg.operators
    producer = {int(t): i for i, op in enumerate(ops) for t in op.outputs}
    uses = {}
    for op in ops:
        for t in op.inputs:
            uses[int(t)] = uses.get(int(t), 0) + 1
    float32 = schema.TensorType.FLOAT32
    changed = 0
    for out in sg.outputs:
        d = producer.get(int(out))
        if d is None or _code(model, ops[d]) != schema.BuiltinOperator.DEQUANTIZE:
            continue
        probs = int(ops[d].inputs[0])
        s = producer.get(probs)
        if s is None or _code(model, ops[s]) != schema.BuiltinOperator.SOFTMAX or uses.get(probs) != 1 \
                or int(out) in (int(t) for t in ops[s].inputs) or sg.tensors[int(out)].type != float32:
            continue
        logits = int(ops[s].inputs[0])
        # the int8 probabilities tensor becomes the float logits between the two ops
        mid = sg.tensors[probs]
        mid.type, mid.quantization = float32, None
        mid.shape, mid.shapeSignature = sg.tensors[logits].shape, sg.tensors[logits].shapeSignature
        mid.name = (sg.tensors[logits].name or b"logits") + b"/dequantized"
        ops[d].inputs, ops[d].outputs = [logits], [probs]
        ops[s].inputs, ops[s].outputs = [probs], [int(out)]
        ops[s], ops[d] = ops[d], ops[s]       # DEQUANTIZE now runs first
        producer = {int(t): i for i, op in enumerate(ops) for t in op.outputs}
        changed += 1
    if not changed:
        return data, 0
    out = flatbuffers.Builder(len(data) + 1024)
    out.Finish(model.Pack(out), file_identifier=b"TFL3")
    return bytes(out.Output()), changed

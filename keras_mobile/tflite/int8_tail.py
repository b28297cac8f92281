"""The classifier tail of a full-integer file with float output: SOFTMAX after DEQUANTIZE.

The converter quantizes a final softmax to int8 (SOFTMAX int8 -> DEQUANTIZE). LiteRT's XNNPACK
delegate does not take an int8 SOFTMAX, so that one op runs on the reference kernel as a
second delegate partition at the end of the graph. With float scores the softmax can just as
well run on the dequantized logits (DEQUANTIZE -> SOFTMAX float32), which XNNPACK delegates:
one partition, and the scores are the exact softmax of the int8 logits instead of an int8
approximation of it. MediaPipe Tasks read the float score tensor as before (same output tensor,
same shape). `export` applies it to every int8 file with float output, PTQ and QAT alike.
Integer outputs (uint8/int8 scores, e.g. the Edge TPU file) keep the int8 SOFTMAX.
It is the float-island rewrite (`float_islands.to_float`) of those SOFTMAX ops alone: `export` makes
it in the same pass as the islands (`float_islands.int8_rewrites`: the file parsed and packed once).
"""
from keras_mobile.tflite.float_islands import op_name

TAIL = "int8 SOFTMAX at the float output"


def softmax_tails(model):
    """{operator index: TAIL} of every graph output of `model` (a schema ModelT) made by int8 SOFTMAX
    -> DEQUANTIZE to float32: the picks for `to_float`, which rewrites each as DEQUANTIZE -> float
    SOFTMAX."""
    sg = model.subgraphs[0]
    ops = sg.operators
    producer = {int(t): i for i, op in enumerate(ops) for t in op.outputs}
    readers = {}
    for i, op in enumerate(ops):
        for t in op.inputs:
            readers.setdefault(int(t), []).append(i)
    tails = {}
    for out in (int(t) for t in sg.outputs):
        d = producer.get(out)
        if d is None or op_name(model, ops[d]) != "DEQUANTIZE" or sg.tensors[out].type != _float32():
            continue
        s = producer.get(int(ops[d].inputs[0]))
        if s is not None and op_name(model, ops[s]) == "SOFTMAX" and readers[int(ops[s].outputs[0])] == [d]:
            tails[s] = TAIL
    return tails


def _float32():
    from keras_mobile.tflite.metadata_format import _schema
    return _schema().TensorType.FLOAT32

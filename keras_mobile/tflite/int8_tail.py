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
it in the same pass as the islands (`int8_rewrites`: the file parsed and packed once).
"""
TAIL = "int8 SOFTMAX at the float output"


def softmax_tails(graph):
    """{operator index: TAIL} of every graph output of a parsed file (a `flatbuffer.TFLiteGraph`) made
    by int8 SOFTMAX -> DEQUANTIZE to float32: the picks for `to_float`, which rewrites each as
    DEQUANTIZE -> float SOFTMAX."""
    sg, names = graph.subgraph, graph.op_names()
    ops = sg.operators
    producer, readers = graph.producers(), graph.readers()
    tails = {}
    for out in (int(t) for t in sg.outputs):
        d = producer.get(out)
        if d is None or names[d] != "DEQUANTIZE" or sg.tensors[out].type != _float32():
            continue
        s = producer.get(int(ops[d].inputs[0]))
        if s is not None and names[s] == "SOFTMAX" and readers[int(ops[s].outputs[0])] == [d]:
            tails[s] = TAIL
    return tails


def _float32():
    from keras_mobile.tflite.metadata_format import _schema
    return _schema().TensorType.FLOAT32

"""The int8 export's rewrites of the converted file, in one pass: parsed once, hard-swish as x * gate
(`hard_swish_order`), the classifier's float softmax tail (`int8_tail`) and the float islands
(`float_islands`), packed once (`flatbuffer.TFLiteGraph`)."""
from keras_mobile.tflite.flatbuffer import TFLiteGraph


def int8_rewrites(tflite, softmax_tail=True, islands=True, hard_swish=False, xnnpack=None):
    """Returns (tflite bytes, reordered, tails, islands): with `hard_swish`, the int8 hard-swish
    triples rewired to x * gate (`hard_swish_order.x_times_gate`, reordered = how many); with
    `softmax_tail`, the classifier's int8 SOFTMAX at a float output computed in float (`int8_tail`,
    tails = how many); with `islands`, the float islands (`float_islands.float_islands`). The input
    bytes when there is nothing to rewrite.

    xnnpack: opens bytes in XNNPACK (`inspect.XnnpackFiles`; default `inspect.make_interpreter`):
    the ops it refuses are asked of the input bytes, whose interpreter the caller may hold already.
    The hard-swish rewiring keeps every op's XNNPACK verdict (it swaps which of a MUL's operands is
    requantized, keeping the product and output scales: `hard_swish_order`), so they are the ops
    the rewired file's XNNPACK refuses; the file as rewritten is checked once more for islands that
    are not delegated either."""
    from keras_mobile.tflite.float_islands import make_islands, refused_int8_ops
    from keras_mobile.tflite.hard_swish_order import rewire
    from keras_mobile.tflite.inspect import make_interpreter, xnnpack_partitions
    from keras_mobile.tflite.int8_tail import TAIL, softmax_tails
    xnnpack = xnnpack or make_interpreter
    graph = TFLiteGraph.read(tflite)
    if islands:     # [(operator object, name)]: still themselves after the rewiring moves ops
        outside = [(graph.subgraph.operators[i], name)
                   for i, name in xnnpack_partitions(graph.data, xnnpack(graph.data))[1]]
    reordered = rewire(graph) if hard_swish else 0
    picks = refused_int8_ops(graph, outside) if islands else {}
    tails = softmax_tails(graph) if softmax_tail else {}
    picks.update(tails)         # XNNPACK refuses the tail's int8 SOFTMAX too: made as the tail, not an island
    made = [m for m in make_islands(graph, picks) if m[2] != TAIL]
    out = graph.pack()
    still_out = {i for i, _ in xnnpack_partitions(out, xnnpack(out))[1]} if made else set()   # the premise, checked
    return out, reordered, len(tails), [(i, op, why + ("; the float op is not delegated either" if i in still_out
                                                        else "")) for i, op, why in made]

"""A .tflite file as the schema's object API (ModelT), for the int8 export's rewrites.

The object API is slow on big files, so a file is parsed once (`TFLiteGraph.read`), every rewrite
changes the same ModelT in place (`hard_swish_order`, `int8_tail`, `float_islands`; in one pass:
`int8_rewrites`) and it is packed once (`TFLiteGraph.pack`). Each tensor's producer and readers
are asked of the graph (`producers`, `readers`): they follow the operators as they are now.
"""
import flatbuffers

from keras_mobile.tflite.metadata_format import _model_bytes, _schema


def op_name(model, op):
    """The builtin name ("CONV_2D") of a flatbuffer operator of `model` (a schema ModelT)."""
    schema = _schema()
    c = model.operatorCodes[op.opcodeIndex]
    code = max(c.builtinCode, c.deprecatedBuiltinCode)
    return next(k for k, v in vars(schema.BuiltinOperator).items() if v == code and not k.startswith("_"))


def read_model(tflite):
    """(schema ModelT, bytes) of a .tflite path or its bytes."""
    graph = TFLiteGraph.read(tflite)
    return graph.model, graph.data


def write_model(model, size_hint=0):
    """The .tflite bytes of a schema ModelT."""
    out = flatbuffers.Builder(size_hint + 1024)
    out.Finish(model.Pack(out), file_identifier=b"TFL3")
    return bytes(out.Output())


class TFLiteGraph:
    """A parsed .tflite (`model`, a schema ModelT, and the bytes it came from, `data`) whose main
    subgraph the rewrites change in place; a rewrite that changed it sets `changed`."""

    def __init__(self, model, data=b""):
        self.model, self.data, self.changed = model, data, False

    @classmethod
    def read(cls, tflite):
        """Parses a .tflite path or its bytes."""
        data = _model_bytes(tflite)
        return cls(_schema().ModelT.InitFromPackedBuf(bytearray(data), 0), data)

    @property
    def subgraph(self):
        return self.model.subgraphs[0]

    def op_names(self):
        """The builtin name of each operator, in order."""
        return [op_name(self.model, op) for op in self.subgraph.operators]

    def producers(self):
        """{tensor: index of the operator that writes it}."""
        return {int(t): i for i, op in enumerate(self.subgraph.operators) for t in op.outputs}

    def readers(self):
        """{tensor: [indices of the operators that read it]} (optional inputs, -1, included)."""
        readers = {}
        for i, op in enumerate(self.subgraph.operators):
            for t in op.inputs:
                readers.setdefault(int(t), []).append(i)
        return readers

    def pack(self):
        """The .tflite bytes: `data` itself when no rewrite changed the graph."""
        return write_model(self.model, len(self.data)) if self.changed else self.data

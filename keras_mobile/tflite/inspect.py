"""What is inside a .tflite file, read through the LiteRT interpreter.

`inspect(path)` reports the op histogram, which ops compute in float (and why), the
input/output quantization, and how XNNPACK partitions the graph on this CPU (an int8 file
split into many delegate partitions runs slow reference kernels between them).
"""
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")
_INT_DTYPES = (np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_)
_SHAPE_OPS = ("SHAPE", "RESHAPE", "STRIDED_SLICE", "PACK", "SQUEEZE", "EXPAND_DIMS", "GATHER", "CONCATENATION")


def make_interpreter(path, delegates=True, num_threads=None, preserve_all_tensors=False):
    """The package's one way to open a .tflite (a path or the model's bytes) in LiteRT, tensors
    allocated. delegates=False: builtin kernels only (the graph as the file has it, no XNNPACK);
    num_threads=None: LiteRT's default."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    source = {"model_content": bytes(path)} if isinstance(path, (bytes, bytearray)) else {"model_path": str(path)}
    if num_threads is not None:
        source["num_threads"] = num_threads
    it = Interpreter(**source, experimental_op_resolver_type=kind,
                     experimental_preserve_all_tensors=preserve_all_tensors)
    it.allocate_tensors()
    return it


class XnnpackFiles:
    """`make_interpreter(data)` (XNNPACK, default threads) for a series of questions about .tflite
    bytes: the interpreter of the last bytes asked is reused while the same bytes come again
    (`export` checks, rewrites, checks and reports a file, often the same bytes several times, and
    XNNPACK packs every weight when an interpreter is made). Holds one interpreter at a time."""

    def __init__(self):
        self._data, self._it = None, None

    def __call__(self, data):
        if self._it is None or (data is not self._data and data != self._data):
            self._data, self._it = None, None       # the old one is freed before the new one is built
            self._it = make_interpreter(data, delegates=True)
            self._data = data
        return self._it


def op_details(it):
    """[{"index", "op_name", "inputs", "outputs"}] of an interpreter's ops, in execution order."""
    # private LiteRT API (Interpreter._get_ops_details), checked on ai-edge-litert 2.3.0: the
    # interpreter has no public op listing
    return it._get_ops_details()


def random_inputs(it, seed=0):
    """Fills every input of an interpreter for timing: N(0, 1) floats, uniform integers over the
    dtype's range. Returns `it`."""
    rng = np.random.default_rng(seed)
    for d in it.get_input_details():
        if np.issubdtype(d["dtype"], np.floating):
            x = rng.standard_normal(d["shape"]).astype(d["dtype"])
        else:
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max, d["shape"], dtype=d["dtype"])
        it.set_tensor(d["index"], x)
    return it


@dataclass
class TensorInfo:
    name: str
    shape: tuple
    dtype: str
    scale: float
    zero_point: int

    def __str__(self):
        q = f" scale={self.scale:.6g} zero_point={self.zero_point}" if self.scale else ""
        return f"{self.name} {list(self.shape)} {self.dtype}{q}"


@dataclass
class TFLiteReport:
    path: str
    file_bytes: int
    ops: Counter
    float_ops: list = field(default_factory=list)        # [(index, op, reason)]
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    delegate_partitions: int = 0
    undelegated_ops: list = field(default_factory=list)  # [(index, op)] XNNPACK left to LiteRT's kernels
    dynamic_shape_ops: int = 0
    extra: dict = field(default_factory=dict)            # exporter's notes (timings, quantization)

    @property
    def fully_integer(self):
        return not self.float_ops

    def __str__(self):
        lines = [f"TFLite file {self.path}: {self.file_bytes / 1024:.1f} KiB, {sum(self.ops.values())} ops"]
        for k, v in self.extra.items():
            if isinstance(v, list):        # one line per entry (e.g. the export's float islands)
                lines.append(f"  {k} ({len(v)}):")
                lines += [f"    {item}" for item in v[:20]] + ([f"    ... {len(v) - 20} more"] if len(v) > 20 else [])
            else:
                lines.append(f"  {k}: {v}")
        lines.append("  op histogram: " + ", ".join(f"{op} x{n}" for op, n in self.ops.most_common()))
        for t in self.inputs:
            lines.append(f"  input  {t}")
        for t in self.outputs:
            lines.append(f"  output {t}")
        if self.float_ops:
            lines.append(f"  ops computing in float ({len(self.float_ops)}):")
            for i, op, why in self.float_ops[:20]:
                lines.append(f"    #{i} {op}: {why}")
            if len(self.float_ops) > 20:
                lines.append(f"    ... {len(self.float_ops) - 20} more")
        else:
            lines.append("  every op runs in integer (edge QUANTIZE/DEQUANTIZE aside)"
                         if self.ops.get("CONV_2D") and self.inputs and self.extra.get("quantization") == "int8"
                         else "  no float-only ops flagged")
        lines.append(f"  XNNPACK: {self.delegate_partitions} delegate partition(s)"
                     + (" (ops between partitions run on slower reference kernels)"
                        if self.delegate_partitions > 1 else ""))
        if self.undelegated_ops:
            lines.append("  not delegated: " + ", ".join(f"#{i} {op}" for i, op in self.undelegated_ops[:20])
                         + (f" ... {len(self.undelegated_ops) - 20} more" if len(self.undelegated_ops) > 20 else ""))
        if self.dynamic_shape_ops:
            lines.append(f"  {self.dynamic_shape_ops} shape-computation ops (dynamic shapes)")
        return "\n".join(lines)


def _tensor_info(detail):
    scale, zp = detail.get("quantization", (0.0, 0))
    return TensorInfo(detail["name"], tuple(int(d) for d in detail["shape"]),
                      np.dtype(detail["dtype"]).name, float(scale), int(zp))


def inspect(path, quantized=None, xnnpack_interpreter=None):
    """Report for a .tflite file. `quantized` (bool) says whether float compute should be flagged;
    by default it is inferred: a file with any int8 compute is treated as a quantized model.
    xnnpack_interpreter: `make_interpreter(path)` when the caller has it open already."""
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no TFLite file at {path}")
    plain = make_interpreter(path, delegates=False)
    details = {t["index"]: t for t in plain.get_tensor_details()}
    ops = op_details(plain)
    hist = Counter(o["op_name"] for o in ops)
    graph_inputs = {d["index"] for d in plain.get_input_details()}
    graph_outputs = {d["index"] for d in plain.get_output_details()}

    def dtype(i):
        return np.dtype(details[i]["dtype"]) if i in details else None

    int8_compute = any(dtype(i) in (np.dtype(np.int8), np.dtype(np.uint8))
                       for o in ops if o["op_name"] not in EDGE_OPS for i in o["outputs"] if i >= 0)
    quantized = int8_compute if quantized is None else quantized
    float_ops = []
    dequantized = {t: o["op_name"] == "DEQUANTIZE" for o in ops for t in o["outputs"]}
    if quantized:
        for o in ops:
            name = o["op_name"]
            tensors = [i for i in list(o["inputs"]) + list(o["outputs"]) if i >= 0]
            floats = [i for i in tensors if dtype(i) is not None and dtype(i).kind == "f"]
            if name in EDGE_OPS:
                continue   # the float side of an edge QUANTIZE/DEQUANTIZE is the point of it
            if set(o["outputs"]) <= graph_outputs and all(dequantized.get(i) for i in o["inputs"] if i >= 0):
                continue   # a float tail on dequantized outputs (export's softmax on float scores)
            if floats:
                names = ", ".join(details[i]["name"][:60] for i in floats[:2])
                where = "graph input" if set(floats) & graph_inputs else (
                    "graph output" if set(floats) & graph_outputs else "inside the graph")
                float_ops.append((o["index"], name, f"float32 tensors ({where}): {names}"))
    partitions, undelegated = xnnpack_partitions(path, xnnpack_interpreter)
    return TFLiteReport(
        path=path, file_bytes=os.path.getsize(path), ops=hist, float_ops=float_ops,
        inputs=[_tensor_info(d) for d in plain.get_input_details()],
        outputs=[_tensor_info(d) for d in plain.get_output_details()],
        delegate_partitions=partitions, undelegated_ops=undelegated,
        dynamic_shape_ops=hist.get("SHAPE", 0))


def _output_position(detail):
    # the converter names outputs "<call>:<i>" with i the Keras output index, but may list them
    # in another order (a detector's file lists classes, count, boxes, scores)
    tail = detail["name"].rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def xnnpack_partitions(path, interpreter=None):
    """(number of XNNPACK delegate partitions, [(index, op)] of the ops left outside them) for a
    .tflite file under LiteRT's default delegate. A DELEGATE node lists only its boundary tensors,
    so the ops it replaced are found by walking back from its outputs to its inputs.
    interpreter: `make_interpreter(path)` when the caller has it open already."""
    ops = op_details(interpreter or make_interpreter(path, delegates=True))
    producer = {t: o["index"] for o in ops if o["op_name"] != "DELEGATE" for t in o["outputs"]}
    covered = set()
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    for d in delegates:
        stop, stack = set(d["inputs"]), list(d["outputs"])
        while stack:
            t = stack.pop()
            if t in stop or t not in producer or producer[t] in covered:
                continue
            covered.add(producer[t])
            stack.extend(i for i in ops[producer[t]]["inputs"] if i >= 0)
    outside = [(o["index"], o["op_name"]) for o in ops if o["op_name"] != "DELEGATE" and o["index"] not in covered]
    return len(delegates), outside


def run_tflite(path, x, interpreter=None):
    """Runs a .tflite classifier/regressor on a batch (float inputs in the model's own units),
    quantizing inputs and dequantizing outputs as the file needs. Returns an array (or a list
    of arrays for several outputs, in the Keras model's output order), batch first.

    Any number of inputs works with any batch size of the file: inputs go through in chunks of
    the file's batch, the last chunk padded with copies of its final input (outputs of the
    padding are dropped)."""
    it = interpreter or make_interpreter(path, delegates=True)
    inp = it.get_input_details()[0]
    outs = sorted(it.get_output_details(), key=_output_position)
    x = np.asarray(x, dtype=np.float32)
    expected = tuple(int(d) for d in inp["shape"][1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"{path} expects inputs of shape (batch,) + {expected}, got {x.shape}")
    if len(x) == 0:
        raise ValueError(f"run_tflite got no inputs (shape {x.shape})")
    file_batch = max(1, int(inp["shape"][0]))
    results = [[] for _ in outs]
    for start in range(0, len(x), file_batch):
        chunk = x[start:start + file_batch]
        n = len(chunk)
        if n < file_batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], file_batch - n, axis=0)])
        scale, zp = inp["quantization"]
        if np.dtype(inp["dtype"]).kind in "iu" and scale:
            info = np.iinfo(inp["dtype"])
            chunk = np.clip(np.round(chunk / scale + zp), info.min, info.max)
        it.set_tensor(inp["index"], chunk.astype(inp["dtype"]))
        it.invoke()
        for r, o in zip(results, outs):
            y = it.get_tensor(o["index"])
            scale, zp = o["quantization"]
            if np.dtype(o["dtype"]).kind in "iu" and scale:
                y = (y.astype(np.float32) - zp) * scale
            r.append(y[:n])
    arrays = [np.concatenate(r) for r in results]
    return arrays[0] if len(arrays) == 1 else arrays

"""Per-layer cost of a Keras model: MACs, parameters, weight and activation bytes, intensity.

MACs follow the usual "GMACs" convention (timm / papers, = torch FlopCounterMode FLOPs / 2):
only convolutions (incl. depthwise / grouped / dilated / strided), dense layers (on any rank,
e.g. [B, N, C] token inputs) and the matmuls inside attention count. BN, activations, adds,
pooling and softmax count 0 MACs but still move bytes (which the roofline uses).

Custom layers declare their cost with a `macs(input_shape)` method (input_shape = the layer's
input shape, or a list of shapes for multi-input layers, batch dimension set to the profiled
batch). Layers without it are handled if known (MultiQueryAttentionCore), otherwise their
sublayers are profiled one by one from the shapes they were built with. Composite layers
(MobileOneBlock, AttentionWithBias, nested Models) get a row of their own plus indented child
rows (depth + 1), so their branches are visible; totals count each MAC once.
"""
import dataclasses
import math
from typing import List, Optional

import numpy as np

# layers a mobile compiler fuses into the preceding conv/dense (no separate memory pass)
FUSABLE = ("BatchNormalization", "Activation", "ReLU", "ZeroPadding2D", "Reshape", "Dropout",
           "LayerScale", "StochasticDepth", "Identity", "InputLayer", "HardSwish", "Rescaling",
           "Normalization")


@dataclasses.dataclass
class LayerProfile:
    name: str
    type: str
    input_shapes: list
    output_shapes: list
    macs: int = 0
    params: int = 0          # trainable parameters
    weight_bytes: int = 0    # all variables (incl. BN statistics) * dtype_bytes
    read_bytes: int = 0      # activations read
    write_bytes: int = 0     # activations written
    depth: int = 0           # 0 = top level (counted in totals); >0 = breakdown of a composite
    children: list = dataclasses.field(default_factory=list)   # breakdown of a composite layer

    @property
    def activation_bytes(self):
        return self.read_bytes + self.write_bytes

    @property
    def memory_bytes(self):
        return self.weight_bytes + self.activation_bytes

    @property
    def bytes(self):
        return self.memory_bytes

    @property
    def intensity(self):
        """Arithmetic intensity: MACs per byte moved (weights + activations)."""
        return self.macs / self.memory_bytes if self.memory_bytes else 0.0

    @property
    def fusable(self):
        return self.type in FUSABLE

    def as_dict(self):
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "children"}
        d.update(memory_bytes=self.memory_bytes, intensity=self.intensity)
        if self.children:
            d["children"] = [c.as_dict() for c in self.children]
        return d


@dataclasses.dataclass
class Profile:
    model_name: str
    input_shape: tuple
    rows: List[LayerProfile]          # top-level layers (each MAC counted once)
    dtype_bytes: int = 4

    @property
    def model(self):
        return self.model_name

    @property
    def top(self):
        return self.rows

    def flat_rows(self):
        """Top-level rows with the breakdown of composite layers interleaved (depth > 0)."""
        out = []

        def walk(r):
            out.append(r)
            for c in r.children:
                walk(c)
        for r in self.rows:
            walk(r)
        return out

    @property
    def totals(self):
        top = self.top
        t = {k: sum(getattr(r, k) for r in top)
             for k in ("macs", "params", "weight_bytes", "read_bytes", "write_bytes")}
        t["activation_bytes"] = t["read_bytes"] + t["write_bytes"]
        t["memory_bytes"] = t["weight_bytes"] + t["activation_bytes"]
        t["intensity"] = t["macs"] / t["memory_bytes"] if t["memory_bytes"] else 0.0
        t["layers"] = len(top)
        return t

    @property
    def macs(self):
        return self.totals["macs"]

    @property
    def params(self):
        return self.totals["params"]

    @property
    def weight_bytes(self):
        return self.totals["weight_bytes"]

    @property
    def activation_bytes(self):
        return self.totals["activation_bytes"]

    def by_type(self):
        out = {}
        for r in self.top:
            d = out.setdefault(r.type, {"count": 0, "macs": 0, "params": 0, "memory_bytes": 0})
            d["count"] += 1
            d["macs"] += r.macs
            d["params"] += r.params
            d["memory_bytes"] += r.memory_bytes
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["macs"]))

    def to_dict(self):
        return {"model": self.model_name, "input_shape": list(self.input_shape),
                "dtype_bytes": self.dtype_bytes, "totals": self.totals,
                "rows": [r.as_dict() for r in self.rows]}

    def find(self, name):
        for r in self.flat_rows():
            if r.name == name:
                return r
        raise KeyError(name)

    def __str__(self):
        return self.summary()

    def to_markdown(self, min_macs=0, include_children=True, max_rows=None, top=None):
        """Markdown table; `top=N` keeps the N layers with the most MACs (in graph order)."""
        keep = None
        if top:
            keep = {id(r) for r in sorted(self.rows, key=lambda r: -r.macs)[:top]}
        lines = [f"### {self.model_name} @ {tuple(self.input_shape)}", "",
                 "| layer | type | output | MACs | params | weight KB | act KB (r+w) | MACs/byte |",
                 "|---|---|---|---:|---:|---:|---:|---:|"]
        n = 0
        for r in self.flat_rows():
            if r.depth and not include_children:
                continue
            if keep is not None and (r.depth or id(r) not in keep):
                continue
            if r.macs < min_macs:
                continue
            if max_rows is not None and n >= max_rows:
                lines.append("| ... | | | | | | | |")
                break
            out = r.output_shapes[0] if len(r.output_shapes) == 1 else r.output_shapes
            name = ("&nbsp;&nbsp;" * r.depth + ("└ " if r.depth else "")) + r.name
            lines.append(f"| {name} | {r.type} | {_fmt_shape(out)} | {r.macs:,} | {r.params:,} | "
                         f"{r.weight_bytes / 1024:.1f} | {r.activation_bytes / 1024:.1f} | {r.intensity:.2f} |")
            n += 1
        t = self.totals
        lines.append(f"| **total** ({t['layers']} layers) | | | **{t['macs']:,}** | **{t['params']:,}** | "
                     f"{t['weight_bytes'] / 1024:.1f} | {t['activation_bytes'] / 1024:.1f} | "
                     f"{t['intensity']:.2f} |")
        return "\n".join(lines)

    def summary(self):
        t = self.totals
        return (f"{self.model_name}: {t['macs'] / 1e6:,.2f} M MACs, {t['params'] / 1e6:,.3f} M params, "
                f"weights {t['weight_bytes'] / 2**20:.2f} MiB, activations {t['activation_bytes'] / 2**20:.2f} MiB, "
                f"{t['intensity']:.2f} MACs/byte")


def _fmt_shape(s):
    if isinstance(s, (list, tuple)) and s and isinstance(s[0], (list, tuple)):
        return ", ".join(_fmt_shape(x) for x in s)
    return "x".join("?" if d is None else str(d) for d in s)


def _shape(t, batch):
    s = tuple(t.shape) if hasattr(t, "shape") else tuple(t)
    return tuple(batch if (i == 0 and d is None) else d for i, d in enumerate(s))


def _numel(shape):
    if any(d is None for d in shape):
        raise ValueError(f"cannot profile a dynamic shape {shape}; build the model with a static "
                         f"input_shape or pass input_shape=(H, W, C)")
    return int(np.prod(shape)) if shape else 1


def _nbytes(var, dtype_bytes):
    return int(np.prod(var.shape)) * dtype_bytes if var.shape else dtype_bytes


# ---------------------------------------------------------------------------------------------
# MAC formulas
def conv_macs(layer, in_shape, out_shape):
    """Conv1D/2D/3D, DepthwiseConv, grouped conv, SeparableConv, Conv2DTranspose."""
    cls = type(layer).__name__
    k = int(np.prod(layer.kernel_size))
    out_spatial = _numel(out_shape[1:-1])
    cin, cout = in_shape[-1], out_shape[-1]
    if "Separable" in cls:
        mult = layer.depth_multiplier
        return out_spatial * cin * mult * k + out_spatial * cin * mult * cout
    if "Depthwise" in cls:
        return out_spatial * cout * k  # cout = cin * depth_multiplier; one tap per output channel
    if "Transpose" in cls:
        return _numel(in_shape[1:-1]) * cin * cout * k
    groups = getattr(layer, "groups", 1) or 1
    return out_spatial * cout * k * (cin // groups)


def dense_macs(layer, in_shape, out_shape):
    return _numel(in_shape[1:-1]) * in_shape[-1] * out_shape[-1]


def attention_core_macs(layer, in_shapes):
    """MultiQueryAttentionCore: q@k^T and attn@v, heads * HW * HW' * (key_dim + value_dim)."""
    q, k = in_shapes[0], in_shapes[1]
    hw, hw_kv = _numel(q[1:-1]), _numel(k[1:-1])
    return layer.num_heads * hw * hw_kv * (layer.key_dim + layer.value_dim)


def mha_macs(layer, in_shapes):
    """keras.layers.MultiHeadAttention: projections + the two matmuls."""
    q = in_shapes[0]
    v = in_shapes[1] if len(in_shapes) > 1 else q
    k = in_shapes[2] if len(in_shapes) > 2 else v
    h, kd = layer.num_heads, layer.key_dim
    vd = layer.value_dim or kd
    nq, nk = _numel(q[1:-1]), _numel(k[1:-1])
    out_dim = layer._output_shape or q[-1] if hasattr(layer, "_output_shape") else q[-1]
    out_dim = out_dim if isinstance(out_dim, int) else q[-1]
    return (nq * q[-1] * h * kd + nk * k[-1] * h * kd + nk * v[-1] * h * vd
            + h * nq * nk * (kd + vd) + nq * h * vd * out_dim)


def _known_macs(layer, in_shapes, out_shapes):
    cls = type(layer).__name__
    single = in_shapes[0] if in_shapes else None
    if cls in ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
               "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        return conv_macs(layer, single, out_shapes[0])
    if cls in ("Dense", "EinsumDense") and cls == "Dense":
        return dense_macs(layer, single, out_shapes[0])
    if cls == "MultiQueryAttentionCore":
        return attention_core_macs(layer, in_shapes)
    if cls == "MultiHeadAttention":
        return mha_macs(layer, in_shapes)
    return None


# ---------------------------------------------------------------------------------------------
def _sublayers(layer):
    import keras
    subs = getattr(layer, "_layers", None)
    if subs is None:
        try:
            subs = [l for l in layer._flatten_layers(include_self=False, recursive=False)]
        except Exception:
            subs = []
    return [s for s in subs if isinstance(s, keras.layers.Layer)]


def _built_shape(layer):
    d = getattr(layer, "_build_shapes_dict", None)
    if d:
        v = next(iter(d.values()))
        return v
    return None


def _layer_row(layer, in_shapes, out_shapes, batch, dtype_bytes, depth):
    """Row for one (possibly composite) layer plus rows of its children."""
    import keras
    cls = type(layer).__name__
    trainable = getattr(layer, "trainable_weights", None) or []   # raw keras.ops nodes have none
    params = sum(_numel(tuple(v.shape)) for v in trainable)
    wbytes = sum(_nbytes(v, dtype_bytes) for v in (getattr(layer, "weights", None) or []))
    read = sum(_numel(s) for s in in_shapes) * dtype_bytes
    write = sum(_numel(s) for s in out_shapes) * dtype_bytes
    row = LayerProfile(layer.name, cls, [list(s) for s in in_shapes], [list(s) for s in out_shapes],
                       0, params, wbytes, read, write, depth)
    children = []
    if not isinstance(layer, keras.layers.Layer):
        pass
    elif isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth"):
        children = _graph_rows(layer, batch, dtype_bytes, depth + 1)
    else:
        subs = _sublayers(layer)
        for sub in subs:
            shp = _built_shape(sub)
            if shp is None:
                continue
            shp = [tuple(shp)] if not (shp and isinstance(shp[0], (list, tuple))) else [tuple(s) for s in shp]
            sub_in = [_shape(s, batch) for s in shp]
            try:
                so = sub.compute_output_shape(sub_in[0] if len(sub_in) == 1 else sub_in)
            except Exception:
                continue
            so = [tuple(so)] if not (so and isinstance(so[0], (list, tuple))) else [tuple(s) for s in so]
            children.append(_layer_row(sub, sub_in, [_shape(s, batch) for s in so], batch, dtype_bytes, depth + 1))

    declared = getattr(layer, "macs", None)
    if callable(declared):
        row.macs = int(declared(in_shapes[0] if len(in_shapes) == 1 else in_shapes))
    else:
        known = _known_macs(layer, in_shapes, out_shapes)
        if known is not None:
            row.macs = int(known)
        elif children:
            row.macs = sum(c.macs for c in children)
    row.children = children
    return row


def _node_keys(model):
    nodes = getattr(model, "_nodes", None)
    return nodes if isinstance(nodes, (set, frozenset, dict)) else None


def _graph_rows(model, batch, dtype_bytes, depth=0):
    """Rows for every call of every layer in a functional model, in topological order."""
    try:
        from keras.src.ops.function import make_node_key
    except Exception:  # pragma: no cover
        make_node_key = None
    keys = _node_keys(model)
    rows = []
    for op in model.operations if hasattr(model, "operations") else model.layers:
        if type(op).__name__ == "InputLayer":
            continue
        for idx, node in enumerate(op._inbound_nodes):
            if keys is not None and make_node_key is not None and make_node_key(op, idx) not in keys:
                continue
            ins = [_shape(t, batch) for t in node.input_tensors]
            outs = [_shape(t, batch) for t in node.outputs]
            rows.append(_layer_row(op, ins, outs, batch, dtype_bytes, depth))
    return rows


def _rebuild(model, input_shape):
    import keras
    inp = keras.Input(shape=tuple(input_shape), name="input")
    return keras.models.clone_model(model, input_tensors=inp)


def build(name, input_shape=None, **kwargs):
    """Build a package model by constructor name with weights=None (for profiling)."""
    from keras_mobile.applications.registry import get_model
    ctor = get_model(name)
    kw = {"weights": None, **kwargs}
    if input_shape is not None:
        kw["input_shape"] = tuple(input_shape)
    return ctor(**kw)


def profile(model, input_shape=None, dtype_bytes=4, batch_size=1):
    """Profile `model` (a Keras model or a package constructor name) layer by layer.

    input_shape (H, W, C): profile at this size (rebuilds a constructor name / clones a
    functional model); default: the model's own static input shape.
    """
    if isinstance(input_shape, int):   # profile(model, dtype_bytes) positional form
        input_shape, dtype_bytes = None, input_shape
    if isinstance(model, str):
        model = build(model, input_shape)
    elif input_shape is not None and tuple(model.inputs[0].shape[1:]) != tuple(input_shape):
        model = _rebuild(model, input_shape)
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"{model.name} has a dynamic input shape {shape}; pass input_shape=(H, W, C)")
    rows = _graph_rows(model, batch_size, dtype_bytes)
    return Profile(model.name, shape, rows, dtype_bytes)


def macs(model, input_shape=None):
    return profile(model, input_shape).macs


def ceil_div(a, b):
    return -(-a // b)


LayerCost = LayerProfile   # alias

__all__ = ["LayerCost", "LayerProfile", "Profile", "profile", "macs", "build", "conv_macs", "dense_macs",
           "attention_core_macs", "math"]

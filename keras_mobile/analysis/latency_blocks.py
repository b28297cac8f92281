"""Cutting a functional model into blocks for the latency table (EfficientFormer-style LUT).

A model's top-level layers are grouped into blocks by module path (`blocks.2.0.*`,
`stages.1.blocks.3.*`, `stages.0.downsample.*`, `conv_stem`, ...; any of `. _ / : -` may
separate the parts). Each block can be cut out of the functional graph as a standalone model
(its inputs = the tensors it reads from outside), keyed by its layer types, configs (names
removed) and input shapes, so repeated blocks are measured once.
"""
import hashlib
import json
import re

from keras_mobile import graph

_TOKEN = re.compile(r"[^._/:-]+")


def block_of(layer_name):
    """Group key of a layer, as a timm module path: its path cut after the 2nd index, or the part
    after the 1st ("blocks-2-0-dw_mid-conv" -> "blocks.2.0"). Tokens may be separated by any of
    `. _ / : -`, so models from elsewhere group too; the package's "-" maps back to "." by the one
    naming rule (keras_mobile.layers.naming). A name without an index is its own group."""
    from keras_mobile.layers.naming import to_timm_path
    toks = list(_TOKEN.finditer(layer_name))
    idx = [i for i, t in enumerate(toks) if t.group().isdigit()]
    if len(idx) >= 2:
        return to_timm_path(layer_name[:toks[idx[1]].end()])
    if len(idx) == 1 and idx[0] + 1 < len(toks):
        return to_timm_path(layer_name[:toks[idx[0] + 1].end()])
    return to_timm_path(layer_name)


def _config_key(layer):
    try:
        cfg = dict(layer.get_config())
    except Exception:  # raw keras.ops nodes
        cfg = {}
    cfg.pop("name", None)
    cfg.pop("trainable", None)
    cfg.pop("dtype", None)
    return [type(layer).__name__, json.dumps(cfg, sort_keys=True, default=str)]


class Block:
    def __init__(self, name):
        self.name = name
        self.items = []     # (layer, node)

    def external_inputs(self):
        produced = {id(t) for _, n in self.items for t in n.outputs}
        seen, ins = set(), []
        for _, n in self.items:
            for t in n.input_tensors:
                if id(t) not in produced and id(t) not in seen:
                    seen.add(id(t))
                    ins.append(t)
        return ins

    def key(self, batch_size=1):
        ins = [[batch_size] + list(t.shape[1:]) for t in self.external_inputs()]
        desc = json.dumps({"inputs": ins, "layers": [_config_key(l) for l, _ in self.items]}, sort_keys=True)
        kinds = "+".join(dict.fromkeys(type(l).__name__ for l, _ in self.items if type(l).__name__ not in
                                       ("BatchNormalization", "Activation", "ReLU", "ZeroPadding2D")))
        return f"{kinds[:60]}|{'x'.join(str(d) for d in ins[0]) if ins else ''}|" + \
            hashlib.sha1(desc.encode()).hexdigest()[:12]

    def to_model(self, batch_size=1):
        """The block as a standalone Keras model (shares the layers and weights)."""
        import keras
        ext = self.external_inputs()
        mapping = {}
        inputs = []
        for i, t in enumerate(ext):
            inp = keras.Input(batch_shape=(batch_size,) + tuple(t.shape[1:]), name=f"in{i}")
            mapping[id(t)] = inp
            inputs.append(inp)

        def sub(x):
            return mapping.get(id(x), x) if hasattr(x, "shape") else x
        last = None
        for layer, node in self.items:
            args = keras.tree.map_structure(sub, node.arguments.args)
            kwargs = keras.tree.map_structure(sub, node.arguments.kwargs)
            out = layer(*args, **kwargs)
            flat_new, flat_old = keras.tree.flatten(out), node.outputs
            for o_old, o_new in zip(flat_old, flat_new):
                mapping[id(o_old)] = o_new
            last = out
        produced_ids = {id(t) for _, n in self.items for t in n.input_tensors}
        outs = [mapping[id(t)] for _, n in self.items for t in n.outputs if id(t) not in produced_ids]
        outs = outs or keras.tree.flatten(last)
        return keras.Model(inputs, outs if len(outs) > 1 else outs[0], name=self.name.replace(".", "_"))


def _unwrap(model):
    """A wrapper around one nested functional model (e.g. a fixed-batch export wrapper) -> the inner model."""
    import keras
    ops_ = [op for op in model.operations if type(op).__name__ != "InputLayer"]
    if len(ops_) == 1 and isinstance(ops_[0], keras.Model) and hasattr(ops_[0], "operations"):
        return _unwrap(ops_[0])
    return model


def _indexed(name):
    """Whether a block name carries a module index ("blocks.2.0", "stages.1.downsample"); the
    stem and head layers of the package's models ("conv_stem", "bn1", "global_pool") do not."""
    return any(t.isdigit() for t in _TOKEN.findall(name))


def _merge(a, b, name=None):
    merged = Block(name or a.name)
    merged.items = a.items + b.items
    return merged


def blocks(model):
    """The model's blocks, in order (consecutive layers with the same block_of key). A block that
    reads more than one tensor from outside is merged with the blocks before it until it reads
    one (EfficientFormer's `head_average` of the `head` and `head_dist` Dense layers becomes one
    `head` block): a block is timed as a single-input model.

    Consecutive blocks without a module index (the stem's `preprocessing`, `conv_stem.pad`,
    `conv_stem`, `bn1`, `act1`; the head's `global_pool` ... `classifier`) are one block, named
    "first..last": timed apart they are not the ops the whole model runs. In the whole file
    the converter folds `bn1` into the conv and fuses `act1`, and XNNPACK folds the stem's
    explicit PAD into the conv; cut apart, each is an op of its own (MobileNetV3Small's 224 px
    stem PAD alone took 0.43 ms, and is free in it; one-off measurement), and the
    preprocessing MUL/ADD followed by the stem conv costs more (0.60 ms) than the two timed
    apart (0.25 + 0.20 ms; benchmarks/latency_block_cuts.py)."""
    model = _unwrap(model)
    grouped, by_name = [], {}
    for layer, node in graph.layer_calls(model):
        b = block_of(layer.name)
        if b not in by_name:
            by_name[b] = Block(b)
            grouped.append(by_name[b])
        by_name[b].items.append((layer, node))
    single = []
    for b in grouped:
        while len(b.external_inputs()) > 1 and single:
            b = _merge(single.pop(), b)
        single.append(b)
    out = []
    for b in single:
        prev = out[-1] if out else None
        if prev is not None and not _indexed(b.name) and not _indexed(prev.name.split("..")[0]):
            merged = _merge(prev, b, f"{prev.name.split('..')[0]}..{b.name}")
            if len(merged.external_inputs()) == 1:
                out[-1] = merged
                continue
        out.append(b)
    return out

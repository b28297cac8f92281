"""Latency lookup table (EfficientFormer-style): time each distinct block once, predict models.

A model's top-level layers are grouped into blocks by module path (`blocks.2.0.*`,
`stages.1.blocks.3.*`, `stages.0.downsample.*`, `conv_stem`, ...; any of `. _ / : -` may
separate the parts). Each block is cut out of the functional graph as a standalone model (its
inputs = the tensors it reads from outside), converted by the package converter
(`tflite.export.converter_for`, float32 or int8) and timed in the LiteRT interpreter. Blocks
are keyed by their layer types, configs (names removed) and input shapes, so repeated blocks
are measured once and the table is reused across models. Prediction = sum of block times
(per-invoke interpreter overhead is measured once, removed from each block and added back once
per model), optionally mapped to whole-model time by a correction fitted on measured models
(`calibrate`).

    table = LatencyTable.load_or_new("lut.json", num_threads=1)
    table.measure_model(model)          # fills missing entries
    ms = table.predict(model)           # no measurement needed once the blocks are known
    table.save("lut.json")
"""
import hashlib
import json
import os
import re
import statistics
import time

import numpy as np

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


def _nodes(model):
    """[(layer, node)] of a functional model in topological order (skipping input layers)."""
    try:
        from keras.src.ops.function import make_node_key
    except Exception:  # pragma: no cover
        make_node_key = None
    keys = getattr(model, "_nodes", None)
    out = []
    for op in model.operations:
        if type(op).__name__ == "InputLayer":
            continue
        for i, node in enumerate(op._inbound_nodes):
            if keys is not None and make_node_key is not None and make_node_key(op, i) not in keys:
                continue
            out.append((op, node))
    return out


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


def blocks(model):
    """The model's blocks, in order (consecutive layers with the same block_of key)."""
    model = _unwrap(model)
    out, by_name = [], {}
    for layer, node in _nodes(model):
        b = block_of(layer.name)
        if b not in by_name:
            by_name[b] = Block(b)
            out.append(by_name[b])
        by_name[b].items.append((layer, node))
    return out


# ---------------------------------------------------------------------------------------------
class _quiet:
    """Silence the converter's stdout/stderr chatter (it prints from C++ and Python)."""

    def __enter__(self):
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        self.null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.null, 1)
        os.dup2(self.null, 2)

    def __exit__(self, *exc):
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved + [self.null]:
            os.close(fd)


QUANTIZATIONS = ("float32", "int8")


def to_tflite(model, quantization="float32", quiet=True):
    """Batch-1 .tflite bytes of `model` through the package converter (`tflite.export.converter_for`).

    int8 is calibrated on random normal inputs (timing does not depend on the scales) with float
    IO, as a block slice of an int8 model would be fed by the previous slice's dequantized output."""
    from keras_mobile.tflite.export import converter_for
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    rep = None
    if quantization == "int8":
        shape = tuple(model.inputs[0].shape[1:])
        rep = np.random.default_rng(0).standard_normal((8,) + shape).astype("float32")
    conv = converter_for(model, quantization, rep, "float32", "float32", num_calibration_steps=8,
                         progress=False)
    if not quiet:
        return conv.convert()
    with _quiet():
        return conv.convert()


def time_tflite(content, num_threads=1, runs=20, warmup=3, seconds=None):
    """Median seconds per invoke of a .tflite (bytes or path) in the LiteRT interpreter."""
    from keras_mobile.tflite.inspect import make_interpreter, random_inputs
    it = random_inputs(make_interpreter(content, num_threads=num_threads))
    for _ in range(warmup):
        it.invoke()
    times = []
    t_end = time.perf_counter() + seconds if seconds else None
    for _ in range(runs):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
        if t_end and time.perf_counter() > t_end and len(times) >= 3:
            break
    return statistics.median(times)


def _overhead(num_threads, quantization="float32"):
    import keras
    x = keras.Input(batch_shape=(1, 4))
    m = keras.Model(x, keras.layers.Dense(4)(x))
    return time_tflite(to_tflite(m, quantization), num_threads, runs=200, warmup=20)


class LatencyTable:
    """Measured seconds per distinct block on one host/thread count/quantization.

    `correction` (fitted by `calibrate` on whole models measured on the same host) maps the sum
    of the block times to a whole-model time: `scale * sum + per_block * n_blocks`. A block timed
    alone runs back to back on its own (its weights and input stay in cache, its kernels' packing
    and dispatch are warm); inside a model each block starts from what the previous one left, a
    cost the plain sum misses (see benchmarks/latency_table_eval.py for the measured effect)."""

    def __init__(self, entries=None, num_threads=1, overhead=None, host=None, quantization="float32",
                 correction=None):
        if quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
        self.entries = dict(entries or {})   # key -> {"seconds", "block", "macs"}
        self.num_threads = num_threads
        self.overhead = overhead
        self.host = host or _host()
        self.quantization = quantization
        self.correction = correction       # {"scale", "per_block_s", ...} or None

    # persistence ---------------------------------------------------------------------------
    def to_dict(self):
        return {"num_threads": self.num_threads, "overhead_seconds": self.overhead, "host": self.host,
                "quantization": self.quantization, "correction": self.correction, "entries": self.entries}

    def save(self, path):
        from keras_mobile.files import write_atomic
        write_atomic(path, json.dumps(self.to_dict(), indent=1, sort_keys=True).encode())
        return path

    @classmethod
    def load(cls, path):
        with open(path) as f:
            d = json.load(f)
        if not isinstance(d, dict) or not isinstance(d.get("entries"), dict):
            raise ValueError(f"{path} is not a latency table (a JSON object with an 'entries' object)")
        return cls(d["entries"], d.get("num_threads", 1), d.get("overhead_seconds"), d.get("host"),
                   d.get("quantization", "float32"), d.get("correction"))

    @classmethod
    def load_or_new(cls, path, num_threads=1, quantization="float32"):
        if path and os.path.exists(path):
            t = cls.load(path)
            if t.num_threads == num_threads and t.quantization == quantization:
                return t
        return cls(num_threads=num_threads, quantization=quantization)

    # measurement / prediction ----------------------------------------------------------------
    def _measure_block(self, b, runs):
        from keras_mobile.analysis.profile import profile
        sub = b.to_model()
        secs = time_tflite(to_tflite(sub, self.quantization), self.num_threads, runs=runs)
        try:
            macs = profile(sub).macs
        except Exception:  # noqa: BLE001 - MACs are informational
            macs = None
        self.entries[b.key()] = {"seconds": secs, "block": b.name, "macs": macs,
                                 "layers": [type(l).__name__ for l, _ in b.items]}

    def measure_model(self, model, runs=20, progress=False):
        """Measure every block of `model` not yet in the table; returns the number measured."""
        if self.overhead is None:
            self.overhead = _overhead(self.num_threads, self.quantization)
        todo = {}
        for b in blocks(model):
            if b.key() not in self.entries:
                todo.setdefault(b.key(), b)
        it = todo.values()
        if progress:
            from keras_mobile.progress import progress_bar
            it = progress_bar(it, total=len(todo), desc=f"LUT {model.name}", unit="block", leave=False)
        for b in it:
            self._measure_block(b, runs)
        return len(todo)

    def missing(self, model):
        return [b.name for b in blocks(model) if b.key() not in self.entries]

    def block_sum(self, model):
        """(sum of block seconds without the per-invoke overhead, [(block, seconds)])."""
        rows, missing = [], []
        ovh = self.overhead or 0.0
        for b in blocks(model):
            e = self.entries.get(b.key())
            if e is None:
                missing.append(b.name)
                continue
            rows.append((b.name, max(e["seconds"] - ovh, 0.0)))
        if missing:
            raise KeyError(f"blocks not in the latency table: {', '.join(missing[:8])}"
                           f"{' ...' if len(missing) > 8 else ''}; run measure_model first")
        return sum(s for _, s in rows), rows

    def predict(self, model, breakdown=False, corrected=True):
        """Predicted seconds per batch-1 inference (raises KeyError naming unmeasured blocks).

        corrected=True applies the fitted `correction` when the table has one."""
        total, rows = self.block_sum(model)
        c = self.correction if corrected else None
        if c:
            total = c["scale"] * total + c["per_block_s"] * len(rows)
        total += self.overhead or 0.0
        return (total, rows) if breakdown else total

    def calibrate(self, pairs, terms=("scale", "per_block")):
        """Fit the correction on [(model, measured seconds)] by least squares (non-negative terms).

        terms: which of "scale" (multiplies the block sum) and "per_block" (seconds per block)
        to fit; the other stays at its identity value. Returns the correction dict."""
        if not pairs:
            raise ValueError("calibrate needs at least one (model, measured seconds) pair")
        ovh = self.overhead or 0.0
        feats, ys = [], []
        for m, measured in pairs:
            total, rows = self.block_sum(m)
            feats.append((total, len(rows)))
            ys.append(measured - ovh)
        self.correction = fit_correction(feats, ys, terms)
        self.correction["fitted_on"] = [m.name for m, _ in pairs]
        return self.correction


def fit_correction(feats, ys, terms=("scale", "per_block")):
    """Least squares of y = scale * block_sum + per_block * n_blocks with non-negative terms.

    feats: [(block_sum_s, n_blocks)]; terms not fitted stay at identity (scale 1, per_block 0).
    With two terms a negative coefficient drops that term (the other is refitted alone)."""
    f = np.asarray(feats, float)
    y = np.asarray(ys, float)
    cols = {"scale": f[:, 0], "per_block_s": f[:, 1]}
    wanted = [n for n, t in (("scale", "scale"), ("per_block_s", "per_block")) if t in terms]

    def solve(names):
        target = y if "scale" in names else y - f[:, 0]
        if not names:
            return {}
        coef = np.linalg.lstsq(np.stack([cols[n] for n in names], 1), target, rcond=None)[0]
        return dict(zip(names, coef.tolist()))

    fit = solve(wanted)
    if any(v < 0 for v in fit.values()):
        fits = [solve([n]) for n in wanted]
        fit = min((d for d in fits if all(v >= 0 for v in d.values())), default={},
                  key=lambda d: float(np.sum((_apply(d, f) - y) ** 2)))
    return {"scale": 1.0, "per_block_s": 0.0, **fit}


def _apply(c, f):
    return c.get("scale", 1.0) * f[:, 0] + c.get("per_block_s", 0.0) * f[:, 1]


def _host():
    import platform
    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count()}


def measure_model_latency(model, num_threads=1, runs=20, quantization="float32"):
    """Whole-model LiteRT latency (seconds, median) of the float32 or int8 file."""
    return time_tflite(to_tflite(model, quantization), num_threads, runs=runs)


def spearman(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ra, rb = a.argsort().argsort().astype(float), b.argsort().argsort().astype(float)
    if len(a) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def mape(pred, meas):
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    return float(np.mean(np.abs(pred - meas) / meas) * 100)


def evaluate(models, table, runs=10, progress=True):
    """Measure LUT blocks and whole models; {model: (predicted s, measured s)} + spearman + MAPE."""
    res = {}
    for m in models:
        table.measure_model(m, runs=runs, progress=progress)
        res[m.name] = (table.predict(m), measure_model_latency(m, table.num_threads, runs, table.quantization))
    names = list(res)
    pred = [res[n][0] for n in names]
    meas = [res[n][1] for n in names]
    return {"models": {n: {"predicted_ms": res[n][0] * 1e3, "measured_ms": res[n][1] * 1e3,
                           "error_pct": 100 * (res[n][0] / res[n][1] - 1)} for n in names},
            "spearman": spearman(pred, meas), "mape_pct": mape(pred, meas),
            "num_threads": table.num_threads}

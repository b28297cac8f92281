"""Latency lookup table (EfficientFormer-style): time each distinct block once, predict models.

A model's top-level layers are grouped into blocks by module path (`blocks.2.0.*`,
`stages.1.blocks.3.*`, `stages.0.downsample.*`, `conv_stem`, ...; any of `. _ / : -` may
separate the parts). Each block is cut out of the functional graph as a standalone model (its
inputs = the tensors it reads from outside), converted by the package converter
(`tflite.export.converter_for`, float32 or int8) and timed in the LiteRT interpreter in its
model's turn: all of the model's slices open at once and invoked in model order, round after
round (`latency_timing.times_in_turn`), so each block runs after the rest of its model, as inside
the whole model. Blocks are keyed by their layer types, configs (names removed) and input shapes,
so repeated blocks are measured once and the table is reused across models. Prediction = sum of block times
(per-invoke interpreter overhead is measured once, removed from each block and added back once
per model), optionally mapped to whole-model time by a correction fitted on measured models
(`calibrate`).

    table = LatencyTable.load_or_new("lut.json", num_threads=1)
    table.measure_model(model)          # fills missing entries
    ms = table.predict(model)           # no measurement needed once the blocks are known
    table.save("lut.json")

The blocks are cut by `latency_blocks`, timed by `latency_timing`; this module holds the table.
"""
import json
import os

import numpy as np

from keras_mobile.analysis.hardware import describe_host
from keras_mobile.analysis.latency_blocks import Block, block_of, blocks  # noqa: F401
from keras_mobile.analysis.latency_timing import (  # noqa: F401
    QUANTIZATIONS, _overhead, block_tflite, measure_model_latency, open_for_timing, slice_io, time_tflite,
    times_in_turn, to_tflite)

# 2: blocks timed in their model's turn (1, unversioned: each block timed alone, back to back, its
# working set resident in cache: at load 3-6 float32 sums 3-23 % under the whole models, int8 5-13 %
# under; idle, alone was within -10..+0.1 % for float32, in turn +2.8..+11.4 %: *_idle.md)
FORMAT_VERSION = 2
_SLICE_CACHE_BYTES = 256 << 20


class TableVersionError(ValueError):
    """A latency table saved in an older format version (its times mean something else)."""


class LatencyTable:
    """Measured seconds per distinct block on one host/thread count/quantization.

    Each block is timed in turn with the other blocks of the model it was measured in (or of a
    `context` model, `measure_model`): timed alone, back to back, a block keeps its weights and
    buffers in cache and runs faster than inside its model (over 7 models in the same rounds, the
    sums of blocks timed alone were 3-23 % under float32 models and 5-13 % under int8 ones; in turn
    -2.5..+14 % and -2.3..+9.3 %, MAPE 6.1 and 3.1 %, float32 8.5 % in a rerun:
    benchmarks/results/search_latency_bias_{float32,int8,float32_rerun}.md, at load 3-6; on an idle
    machine alone did better for float32, 4.3 vs 7.5 %, and both ~1.5 % for int8: *_idle.md).
    In turn each slice's activations are its own buffers, cold, where the whole model reuses one
    arena that stays in cache, hence the float32 over-prediction of activation-heavy blocks
    (per block: benchmarks/results/latency_block_cuts_float32_per_block.md).

    `correction` (fitted by `calibrate` on whole models measured on the same host) maps the sum
    of the block times to a whole-model time: `scale * sum + per_block * n_blocks`."""

    def __init__(self, entries=None, num_threads=1, overhead=None, host=None, quantization="float32",
                 correction=None, block_io=None):
        if quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
        self.block_io = block_io or slice_io(quantization)   # IO type its blocks were timed with
        self.entries = dict(entries or {})   # key -> {"seconds", "block", "macs"}
        self.num_threads = num_threads
        self.overhead = overhead
        self.host = host or describe_host()
        self.quantization = quantization
        self.correction = correction       # {"scale", "per_block_s", ...} or None
        self._slices = {}                  # key -> .tflite bytes of a block slice (this process only)

    # persistence ---------------------------------------------------------------------------
    def to_dict(self):
        return {"version": FORMAT_VERSION, "num_threads": self.num_threads, "overhead_seconds": self.overhead,
                "host": self.host, "quantization": self.quantization, "correction": self.correction,
                "block_io": self.block_io, "entries": self.entries}

    def save(self, path):
        from keras_mobile.files import write_atomic
        write_atomic(path, json.dumps(self.to_dict(), indent=1, sort_keys=True).encode())
        return path

    @classmethod
    def load(cls, path):
        """The table saved at `path`. ValueError for a file that is not a table, or a table of
        another format version (an unversioned one timed each block alone: its times, and a
        `correction` fitted on them, mean something else; `load_or_new` re-measures it)."""
        with open(path) as f:
            d = json.load(f)
        if not isinstance(d, dict) or not isinstance(d.get("entries"), dict):
            raise ValueError(f"{path} is not a latency table (a JSON object with an 'entries' object)")
        version = d.get("version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"{path} is a latency table of format version {version!r}, newer than this package "
                             f"reads ({FORMAT_VERSION}): upgrade keras_mobile or measure the table again")
        if version < FORMAT_VERSION:
            raise TableVersionError(
                f"{path} is a latency table of format version {version}, this package reads version "
                f"{FORMAT_VERSION}: its block times were measured with each block timed alone (its weights stay "
                f"in cache; at load 3-6 float32 sums came out 3-23 % under the whole model, idle within 10 %), "
                f"and a stored correction was fitted on those times. Measure it again (delete it, or "
                f"LatencyTable.load_or_new re-measures it); if its times are your own per-block measurements "
                f"taken inside whole-model runs, add \"version\": {FORMAT_VERSION}")
        return cls(d["entries"], d.get("num_threads", 1), d.get("overhead_seconds"), d.get("host"),
                   d.get("quantization", "float32"), d.get("correction"), d.get("block_io", "float32"))

    @classmethod
    def load_or_new(cls, path, num_threads=1, quantization="float32"):
        """The table at `path` if it was measured as this one would be (format version, threads,
        quantization, block IO type: int8 tables saved before blocks had int8 IO are re-measured),
        else a new one (with a warning for an older format version). A file that is not a table,
        is not JSON, or has a newer format version raises ValueError: it is not overwritten."""
        if path and os.path.exists(path):
            try:
                t = cls.load(path)
            except TableVersionError as e:     # only an old format is re-measured: anything else raises
                import warnings
                warnings.warn(f"{e} Re-measuring it.", stacklevel=2)
                return cls(num_threads=num_threads, quantization=quantization)
            if t.num_threads == num_threads and t.quantization == quantization and \
                    t.block_io == slice_io(quantization):
                return t
        return cls(num_threads=num_threads, quantization=quantization)

    # measurement / prediction ----------------------------------------------------------------
    def _slice(self, b):
        """.tflite bytes of block `b`, converted once per key in this process, with the table's own
        block IO (a table loaded by path keeps one measuring method throughout)."""
        if b.key() not in self._slices:
            if sum(map(len, self._slices.values())) > _SLICE_CACHE_BYTES:
                self._slices.clear()         # a long search's variants: bound the memory, convert again
            self._slices[b.key()] = to_tflite(b.to_model(), self.quantization, io_dtype=self.block_io)
        return self._slices[b.key()]

    def measure_model(self, model, runs=20, progress=False, context=None):
        """Measure every block of `model` not yet in the table; returns the number of entries added.

        The blocks are timed in turn with the blocks of `context` (default `model`; a model, or a
        function returning one, called only if something is measured): one interpreter per block
        of `context`, all invoked in model order round after round, then the blocks of `model`
        that `context` lacks (e.g. a searched variant of one row, priced in the model it belongs
        to). A key's time is the median over the rounds, averaged over its blocks in the turn.
        Every block of the turn missing from the table is added, those of `context` too."""
        if self.overhead is None:
            self.overhead = _overhead(self.num_threads, self.quantization)
        mine = blocks(model)
        if all(b.key() in self.entries for b in mine):
            return 0
        if callable(context) and not hasattr(context, "layers"):
            context = context()
        turn = blocks(context) if context is not None else mine
        keys = {b.key() for b in turn}
        turn += [b for b in dict((b.key(), b) for b in mine).values() if b.key() not in keys]
        it = turn
        if progress:
            from keras_mobile.progress import progress_bar
            it = progress_bar(turn, total=len(turn), desc=f"LUT {model.name}", unit="block", leave=False)
        slices = [open_for_timing(self._slice(b), self.num_threads) for b in it]
        times = times_in_turn(slices, self.num_threads, runs)
        del slices
        per_key, first = {}, {}
        for b, ts in zip(turn, times):
            per_key.setdefault(b.key(), []).append(float(np.median(ts)))
            first.setdefault(b.key(), b)
        added = [k for k in per_key if k not in self.entries]
        for k in added:
            self._add_entry(first[k], float(np.mean(per_key[k])))
        return len(added)

    def _add_entry(self, b, seconds):
        from keras_mobile.analysis.profile import profile
        try:
            macs = profile(b.to_model()).macs
        except Exception:  # noqa: BLE001 - MACs are informational
            macs = None
        self.entries[b.key()] = {"seconds": seconds, "block": b.name, "macs": macs,
                                 "layers": [type(l).__name__ for l, _ in b.items]}

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

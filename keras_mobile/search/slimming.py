"""Latency-driven slimming (Li et al., 'EfficientFormer', NeurIPS 2022): a supernet trained with
Gumbel-softmax architecture weights, then progressive slimming by importance per ms saved.

1. `SuperNet` over the model's table: candidate blocks per row (supernet.py), initialised from
   the model's weights where a candidate has the same layers (the row's own block exactly).
2. `train_supernet`: Adam on weights and architecture logits together, Gumbel temperature
   annealed geometrically; a candidate's importance is the softmax of its row's logits.
3. `slim_path`: each row's candidates are priced by the search's latency source (one row
   model per candidate through `RowPricer`, the identity at 0 ms); starting from the most
   important candidate of every row, each step replaces one row's pick by a cheaper candidate,
   the one losing the least importance per ms saved, until the predicted latency is within the
   budget (no step when the most important candidates already fit: the result is then faster
   than the budget, since spending the slack would only buy candidates the supernet ranks lower).
4. The chosen sub-network is extracted as an ordinary package model (weights from the
   supernet) and fine-tuned.

`slim(...)` runs the four steps; `out_dir` holds `model.keras` and `slim.json` (choices,
importance, predicted ms per step), and `supernet.npz` (its weights) after step 2: a rerun with the
same supernet arguments skips the training, and returns the finished result when the budget,
latency source and fine-tuning are the same too, or slims the trained supernet again for new
ones (one supernet, many budgets or devices; the new result replaces the old one).
"""
import os
from dataclasses import dataclass, field

import numpy as np

from keras_mobile.files import write_atomic
from keras_mobile.search.latency import HOST_SOURCES, RowPricer, get_source
from keras_mobile.search.space import TableSpace
from keras_mobile.search.supernet import SLIMMABLE, SuperNet
from keras_mobile.search.training import (Data, evaluate, read_state, run_dir, save_json, save_model, train_batches,
                                          train_epochs)

STATE_VERSION = 2


def train_supernet(supernet, train_data, steps=200, learning_rate=1e-3, temperature=(5.0, 0.5), seed=0,
                   batch_size=32):
    """Trains `supernet`'s weights and architecture logits for `steps` batches of `train_data`
    ((x, y) arrays or a tf.data pipeline of (x, y) batches), the Gumbel temperature going
    geometrically from temperature[0] to temperature[1]. Returns `supernet.importance()`."""
    t0, t1 = (float(t) for t in temperature)
    if not (t0 > 0 and t1 > 0):
        raise ValueError(f"temperature must be two positive numbers (start, end), got {temperature!r}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps!r}")
    data = train_data if isinstance(train_data, Data) else \
        Data(train_data, tuple(supernet.model.inputs[0].shape[1:]), batch_size, "train_data")

    def anneal(i):
        supernet.set_temperature(t0 * (t1 / t0) ** (i / max(steps - 1, 1)))

    if steps:
        train_batches(supernet.model, data.steps(steps, seed), learning_rate, seed, steps, on_step=anneal)
    return supernet.importance()


@dataclass
class SlimPath:
    """The result of `slim_path`: picks per choice row and how the slimming got there."""
    picks: dict                   # row -> candidate index
    predicted_ms: float
    start_ms: float               # the base table (every row its own block)
    min_ms: float                 # every row at its cheapest candidate
    costs: dict                   # row -> ms per candidate
    importance: dict              # row -> softmax of the logits per candidate
    steps: list = field(default_factory=list)
    budget_met: bool = True       # False only when a whole-model source priced the cheapest picks above it


def row_costs(supernet, pricer):
    """{row: predicted ms of each candidate in that row}; the identity costs 0. A source that
    prices only whole models gives each candidate's whole-model difference to the base table."""
    costs = {}
    base = supernet.base
    base_ms = None if pricer.rowwise else pricer.whole(base)
    for i, cands in supernet.choices.items():
        in_shape = supernet.built.row_inputs[i]
        row = []
        for k in range(len(cands)):
            one = supernet.choose({i: k})
            if pricer.rowwise:
                ms = pricer.row(one, i, in_shape)
            else:
                ms = pricer.whole(one) - base_ms
            row.append(float(ms))
        if not pricer.rowwise:                  # whole-model differences: candidate 0 is the base
            row = [v - row[0] for v in row]
        costs[i] = row
    return costs


@dataclass
class Prices:
    """Predicted latency of a supernet's choices (see `price_choices`)."""
    costs: dict                   # row -> ms per candidate
    start_ms: float               # the base table (every row its own block)
    source: object                # the LatencySource
    rowwise: bool                 # costs are row models' ms (else whole-model differences)

    @property
    def min_ms(self):
        """Every row at its cheapest candidate."""
        return self.start_ms + sum(min(c) - c[0] for c in self.costs.values())

    def predict(self, picks):
        return self.start_ms + sum(self.costs[i][picks[i]] - self.costs[i][0] for i in self.costs)

    def check(self, budget_ms, name):
        _check_budget(budget_ms)
        if budget_ms < self.min_ms:
            raise ValueError(f"budget_ms={budget_ms:g} is below what slimming can reach: every row of {name} at "
                             f"its cheapest candidate is predicted at {self.min_ms:.3f} ms ({self.source.name}); "
                             f"the full model at {self.start_ms:.3f} ms")


def _check_budget(budget_ms):
    if isinstance(budget_ms, (bool, np.bool_)) or not isinstance(budget_ms, (int, float, np.integer, np.floating)) \
            or not budget_ms > 0:
        raise ValueError(f"budget_ms must be a positive number, got {budget_ms!r}")


def _next_step(costs, importance, picks):
    """(row, candidate) of the cheaper candidate losing the least importance per ms saved, or None."""
    best = None
    for i, c in costs.items():
        cur = picks[i]
        for j, cj in enumerate(c):
            saved = c[cur] - cj
            if saved <= 0:
                continue
            lost = max(float(importance[i][cur] - importance[i][j]), 0.0)
            key = (lost / saved, -saved, i, j)
            best = key if best is None or key < best else best
    return None if best is None else best[2:]


def price_choices(supernet, latency="host", start_ms=None, num_threads=1):
    """`Prices` of every candidate of `supernet` from `latency` (any source of `get_source`).
    start_ms: the base table's latency (default: its whole model predicted by the source)."""
    pricer = RowPricer(get_source(latency, num_threads=num_threads))
    start = float(start_ms) if start_ms is not None else pricer.whole(supernet.base)
    return Prices(row_costs(supernet, pricer), start, pricer.source, pricer.rowwise)


def slim_path(supernet, budget_ms, latency="host", start_ms=None, num_threads=1, prices=None):
    """Progressive slimming of a trained `supernet` to `budget_ms` predicted by `latency` (any
    source of `get_source`; or `prices` from `price_choices`). start_ms: the base table's
    latency (default: predicted whole). Returns a `SlimPath`.

    Raises ValueError when the budget is below what the supernet can reach (naming that minimum)."""
    prices = prices or price_choices(supernet, latency, start_ms, num_threads)
    prices.check(budget_ms, supernet.base.spec.name)
    costs, importance = prices.costs, supernet.importance()
    picks = supernet.picks()
    ms = prices.predict(picks)
    steps = []
    while True:
        if ms <= budget_ms and not prices.rowwise:
            # whole-model differences add up only approximately: the model itself decides
            ms = prices.source.predict_ms(supernet.choose(picks).build().model)
        if ms <= budget_ms:
            break
        step = _next_step(costs, importance, picks)
        if step is None:           # row-wise prices cannot get here (budget >= min_ms was checked)
            break
        i, j = step
        steps.append({"row": i, "from": picks[i], "to": j,
                      "importance_lost": float(importance[i][picks[i]] - importance[i][j]),
                      "ms_saved": costs[i][picks[i]] - costs[i][j]})
        picks[i] = j
        ms = prices.predict(picks)
        steps[-1]["predicted_ms"] = ms
    prices.source.save()
    return SlimPath(picks, ms, prices.start_ms, prices.min_ms, costs, importance, steps, ms <= budget_ms)


# the entry point ------------------------------------------------------------------------------
def _space(model, train_data):
    """(TableSpace, the model to inherit weights from or None) of a model, a name or a space."""
    import keras
    if isinstance(model, TableSpace):
        return model, None
    if isinstance(model, keras.Model):
        return TableSpace.from_model(model, SLIMMABLE), model
    if isinstance(model, str):
        from keras_mobile.applications import registry
        try:
            entry, spec = registry.spec_of(model)
        except ValueError:
            entry = None
        if entry is None or entry.family not in SLIMMABLE:
            raise ValueError(f"slim supports the table models of {', '.join(SLIMMABLE)}; got the name {model!r}")
        if not (isinstance(train_data, (tuple, list)) and len(train_data) == 2):
            raise ValueError("slimming a model given by name needs train_data as (x, y) arrays (its input "
                             "size and class count come from them); build the model and pass it instead")
        x, y = np.asarray(train_data[0]), np.asarray(train_data[1])
        return TableSpace.from_spec(spec, input_shape=tuple(x.shape[1:]), classes=int(y.max()) + 1,
                                    classifier_activation=None), None
    raise ValueError(f"model must be a keras_mobile model, a model name or a TableSpace, got {type(model).__name__}")


def slim(model, budget_ms, train_data, val_data, latency="host", steps=200, finetune_epochs=1, out_dir=None,
         seed=0, batch_size=32, learning_rate=1e-3, temperature=(5.0, 0.5), rows=None, num_threads=1,
         calibrate=True):
    """Slims `model` to a predicted latency within `budget_ms` (EfficientFormer's latency-driven slimming).

    Args:
        model: a keras_mobile MobileNetV3/V4 or EfficientFormer model (trained: its weights start
            the supernet), a model name (a fresh model of that table, sized by `train_data`), or a
            `TableSpace`.
        budget_ms: the latency to reach, in milliseconds of the `latency` source.
        train_data, val_data: (x, y) arrays of raw pixels at the model's input size and integer
            labels, or tf.data pipelines of (x, y) batches.
        latency: "host" (LiteRT float32 on this machine), "host-int8", "edgetpu" (roofline), a
            latency-table JSON path, a callable model -> ms, or a LatencySource.
        steps: supernet training batches (Gumbel-softmax over the candidates of each row).
        finetune_epochs: epochs of fine-tuning of the extracted sub-network.
        out_dir: where `model.keras`, `slim.json` and `supernet.npz` go; a rerun with the same
            supernet arguments (all but budget_ms, latency, finetune_epochs) reuses the trained
            supernet (and returns the result when nothing changed). None: a temporary folder.
        seed: seeds the supernet (weights of new candidates, Gumbel noise) and the batch order.
        batch_size, learning_rate: of the supernet training and the fine-tuning (Adam).
        temperature: (start, end) of the Gumbel-softmax temperature.
        rows: rows that get choices (see `SuperNet`); None: all with an alternative.
        num_threads: LiteRT threads of the "host" sources.
        calibrate: with "host"/"host-int8" and a model, time the model whole once and scale the
            block table to it (as NetAdapt does).

    Returns:
        The slimmed Functional model (a package model of the same table with the chosen blocks).

    Raises:
        ValueError: for a model outside the supported tables, bad data or arguments, or a budget
            below the smallest latency the supernet can reach (the message names that minimum).
    """
    import keras
    _check_budget(budget_ms)                                 # before any build
    if steps < 0 or finetune_epochs < 0:
        raise ValueError(f"steps and finetune_epochs must be >= 0, got {steps!r}, {finetune_epochs!r}")
    space, parent = _space(model, train_data)
    if rows is not None and not callable(rows):
        rows = tuple(rows)                 # read twice: the run's arguments, then the supernet
    shape = tuple(space.build_kwargs["input_shape"])
    train = Data(train_data, shape, batch_size, "train_data")
    val = Data(val_data, shape, batch_size, "val_data")
    source = get_source(latency, num_threads=num_threads)
    # the supernet depends on these; the budget, latency source and fine-tuning only pick from it
    args = {"model": space.spec.name, "steps": steps, "seed": seed, "batch_size": batch_size,
            "learning_rate": learning_rate, "temperature": list(temperature),
            "rows": None if rows is None or callable(rows) else sorted(rows),
            "table": _fingerprint(repr(space.rows), repr(sorted(space.build_kwargs.items()))),
            "parent_weights": None if parent is None else _fingerprint(*parent.get_weights())}
    # a callable source has no name to compare: its result is never reused (re-slimming is cheap)
    slim_args = {"budget_ms": float(budget_ms), "latency": None if callable(latency) else source.name,
                 "finetune_epochs": finetune_epochs}
    with run_dir(out_dir, "slim-") as out:
        paths = {k: os.path.join(out, f) for k, f in
                 (("log", "slim.json"), ("supernet", "supernet.npz"), ("result", "model.keras"))}
        log = _resume(paths, args)
        if log.get("done") and log.get("slim") == slim_args and slim_args["latency"] is not None \
                and os.path.isfile(paths["result"]):
            return keras.models.load_model(paths["result"])
        keras.utils.set_random_seed(seed)
        supernet = SuperNet(space, rows)
        start_ms = None
        if parent is not None:
            supernet.inherit(parent)
            if calibrate and isinstance(latency, str) and latency in HOST_SOURCES:
                source.calibrate(parent)
            start_ms = source.predict_ms(parent)
        prices = price_choices(supernet, source, start_ms)
        prices.check(budget_ms, space.spec.name)       # before training: an impossible budget fails at once
        if log.get("trained"):
            with np.load(paths["supernet"]) as f:
                supernet.model.set_weights([f[f"w{k}"] for k in range(len(f.files))])
        else:
            train_supernet(supernet, train, steps, learning_rate, temperature, seed)
            _save_weights(supernet.model, paths["supernet"])
            log = {"version": STATE_VERSION, "args": args, "trained": True}
            save_json(paths["log"], log)
        path = slim_path(supernet, budget_ms, prices=prices)
        child = supernet.extract(path.picks)
        train_epochs(child, train, finetune_epochs, learning_rate, seed + 7919)
        if not path.budget_met:
            import warnings
            warnings.warn(f"slim: {space.spec.name} at its cheapest picks is predicted at {path.predicted_ms:.3f} ms "
                          f"by {source.name}, above budget_ms={budget_ms:g} (whole-model prices do not add up)")
        log.update(done=True, slim=slim_args, start_ms=path.start_ms, min_ms=path.min_ms, predicted_ms=path.predicted_ms,
                   budget_met=path.budget_met,
                   accuracy=evaluate(child, val),
                   choices=[{**c, "importance": [float(v) for v in path.importance[c["row"]]],
                             "latency_ms": path.costs[c["row"]]} for c in supernet.describe(path.picks)],
                   steps=path.steps)
        save_model(child, paths["result"])
        save_json(paths["log"], log)
        source.save()
        return child


def _fingerprint(*parts):
    """A short hash of strings or arrays: what the trained supernet was made from."""
    import hashlib
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else np.ascontiguousarray(p).tobytes())
    return h.hexdigest()[:16]


def _save_weights(model, path):
    """The weights alone (.npz, written atomically): the supernet is rebuilt from its table."""
    import io
    buf = io.BytesIO()
    np.savez(buf, **{f"w{k}": w for k, w in enumerate(model.get_weights())})
    write_atomic(path, buf.getvalue())


def _resume(paths, args):
    """The log of an earlier run in out_dir whose supernet was trained with the same arguments
    ({} when there is none, or its weights are missing)."""
    log = read_state(paths["log"], STATE_VERSION, args, "slimming run")
    return log if log and log.get("trained") and os.path.isfile(paths["supernet"]) else {}

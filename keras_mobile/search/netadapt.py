"""NetAdapt (Yang et al., ECCV 2018): shrink a trained model to a latency budget, block by block.

Each iteration asks every knob of the table (expansion width of a row, or the width of a group
of residual-tied rows) for the largest reduction that brings the predicted latency down by
`step` x the starting latency, builds that child with the kept channels (largest L2 norm of
the expansion conv's filters, or of the projections for an output width) copied from the
parent, fine-tunes it for `short_term_steps` and keeps the most accurate. When no knob alone
reaches the iteration's target, each proposes its smallest width and the one losing the least
accuracy per ms removed wins (MobileNetV3's variant of NetAdapt), so a large step still makes
real cuts instead of the most accurate, i.e. smallest, one. It stops at the budget and
fine-tunes the result for `long_term_epochs`.

State lives in `out_dir` (`state.json`, `current.keras`, `search.json`): a run interrupted
between iterations continues from the last finished one when called again with the same
arguments.
"""
import os
import tempfile

import numpy as np

from keras_mobile.search.inherit import inherit, l2_rank
from keras_mobile.search.latency import HOST_SOURCES, RowPricer, get_source
from keras_mobile.search.space import TableSpace
from keras_mobile.search.training import (Data, evaluate, progress, read_state, save_json, save_model,
                                          train_batches, train_epochs)

STATE_VERSION = 1


# latency ---------------------------------------------------------------------------------------
class _Pricer(RowPricer):
    """Predicted latency of NetAdapt's children: parent total - old rows + new rows when the
    source prices single rows; the whole child otherwise."""

    def delta(self, parent, parent_ms, built, knob, child):
        """Predicted ms of `child` (= parent with `knob` changed), from the rows it changes."""
        if knob.stem or not self.rowwise:
            return self.whole(child)
        changed = set(knob.rows)
        if knob.kind == "out":
            nxt = max(knob.rows) + 1
            if nxt >= len(parent.rows):
                return self.whole(child)          # the head reads this width: not a row
            changed.add(nxt)
        ms = parent_ms
        for i in sorted(changed):
            in_p = built.row_inputs[i]
            in_c = in_p[:-1] + ((child.rows[i - 1].out if i else child.spec.stem_width),)
            ms += self.row(child, i, in_c) - self.row(parent, i, in_p)
        return ms


def _proposal(pricer, space, space_ms, built, knob, target):
    """The largest value of `knob` whose child is predicted at or under `target` ms (binary search
    over the knob's choices, latency assumed monotone in width), else its smallest value."""
    choices = space.choices(knob)
    if not choices:
        return None
    price = {}

    def ms(v):
        if v not in price:
            price[v] = pricer.delta(space, space_ms, built, knob, space.set(knob, v))
        return price[v]

    lo, hi = 0, len(choices) - 1                      # choices are descending
    if ms(choices[hi]) > target:
        return choices[hi], ms(choices[hi]), False   # cannot reach the target alone
    while lo < hi:
        mid = (lo + hi) // 2
        if ms(choices[mid]) <= target:
            hi = mid
        else:
            lo = mid + 1
    return choices[lo], ms(choices[lo]), True


def _kept(built, space, knob, value):
    """{(old, new): indices} for the knob's width: L2 norm of the filters that produce it."""
    if knob.kind == "mid":
        k = np.asarray(built.expansion_conv(knob.rows[0]).kernel.numpy())
        return {(k.shape[-1], value): l2_rank(k, value)}
    convs = ([-1] if knob.stem else []) + list(knob.rows)
    norms = None
    for i in convs:
        k = built.output_filters(i)
        if k is None:
            continue
        k = np.asarray(k, np.float64)
        n = np.sqrt((k.reshape(-1, k.shape[-1]) ** 2).sum(0))
        norms = n if norms is None else norms + n
    old = space.value(knob)
    return {(old, value): np.sort(np.argsort(-norms, kind="stable")[:value])}


# search ---
def netadapt(model, budget_ms, train_data, val_data, latency="host", step=0.05, short_term_steps=100,
             long_term_epochs=1, out_dir=None, seed=0, batch_size=32, learning_rate=1e-3,
             long_term_learning_rate=None, max_iterations=100, num_threads=1, knobs=None, calibrate=True,
             on_train_loss=None):
    """Shrinks `model` (a package MobileNetV3/V4, MobileOne or EfficientFormer) to a predicted
    latency within `budget_ms`.

    Args:
        model: a trained keras_mobile MobileNetV3/V4, train-time MobileOne or EfficientFormer
            classifier (any width multiplier, or a result of an earlier search). EfficientFormer's
            knobs are its Meta4D/Meta3D MLP widths and its stage widths (a stage's downsample and
            the Meta blocks after it; the stem with stage 0).
        budget_ms: the latency to reach, in milliseconds of the `latency` source.
        train_data, val_data: (x, y) arrays of raw pixels at the model's input size and integer
            labels, or tf.data pipelines of (x, y) batches (integer or one-hot labels).
        latency: "host" (LiteRT float32 on this machine), "host-int8", "edgetpu" (roofline
            preset), a latency-table JSON path, a callable model -> ms, or a LatencySource.
        step: fraction of the starting latency each iteration removes.
        short_term_steps: fine-tuning batches per proposal before comparing accuracies.
        long_term_epochs: fine-tuning epochs of the final model.
        out_dir: where the state, the log (`search.json`) and the result (`model.keras`) go;
            a run with the same out_dir and arguments resumes. None: a temporary folder.
        seed: seeds the batch order and the fine-tuning.
        batch_size: batch size for (x, y) arrays.
        learning_rate: Adam learning rate of the short-term fine-tuning.
        long_term_learning_rate: of the final fine-tuning (default learning_rate).
        max_iterations: stop after this many iterations even if the budget is not reached.
        num_threads: LiteRT threads of the "host" sources.
        knobs: which choices to search: None (all), a set of kinds ({"mid"}, {"out"}) or a
            callable Knob -> bool (e.g. only some rows).
        calibrate: with "host"/"host-int8", time `model` whole once and scale the block table
            to it (the block sum alone misses what the whole model's cache working set costs:
            float32 block sums were off by up to +15 % (blocks in turn) or -23 % (alone) per model, results/search_latency_bias*.md).
        on_train_loss: called after every fine-tuning run with {"phase": "short_term" or
            "long_term", "iteration", "knob" (its label; None for the long term), "losses": the
            loss of every batch}, to watch the loss fall; None (the default) reports nothing.

    Returns:
        The adapted Functional model (its weights inherited from `model`, then fine-tuned).

    Raises:
        ValueError: for a model outside the supported tables, bad data, or a budget below the
            smallest latency the space can reach (the message names that minimum).
    """
    if not budget_ms > 0:
        raise ValueError(f"budget_ms must be a positive number, got {budget_ms!r}")
    if not 0 < step < 1:
        raise ValueError(f"step must be in (0, 1), got {step!r}")
    if short_term_steps < 0 or long_term_epochs < 0:
        raise ValueError("short_term_steps and long_term_epochs must be >= 0")
    space = TableSpace.from_model(model)
    shape = tuple(model.inputs[0].shape[1:])
    train = Data(train_data, shape, batch_size, "train_data")
    val = Data(val_data, shape, batch_size, "val_data")
    source = get_source(latency, num_threads=num_threads)
    pricer = _Pricer(source)
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="netadapt-")
        out_dir = tmp.name
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f) for k, f in
             (("state", "state.json"), ("current", "current.keras"), ("log", "search.json"),
              ("result", "model.keras"))}
    if knobs is None:
        keep = None
    elif callable(knobs):
        keep = knobs
    else:
        kinds = set(knobs)
        if not kinds or not kinds <= {"mid", "out"}:
            raise ValueError(f"knobs must be None, a subset of {{'mid', 'out'}} or a callable, got {knobs!r}")
        keep = lambda k: k.kind in kinds  # noqa: E731
    args = {"model": model.name, "budget_ms": budget_ms, "step": step, "short_term_steps": short_term_steps,
            "seed": seed, "latency": source.name, "batch_size": batch_size, "learning_rate": learning_rate}
    try:
        state, current = _resume(paths, args)
        if state is None:
            measured = None
            if calibrate and isinstance(latency, str) and latency in HOST_SOURCES:
                measured = source.calibrate(model)     # LiteRT ms of the whole start model
            start_ms = source.predict_ms(model)
            floor = pricer.whole(space.smallest(keep))
            if budget_ms < floor:
                raise ValueError(f"budget_ms={budget_ms:g} is below what the search can reach: the smallest "
                                 f"{model.name} of this space is predicted at {floor:.3f} ms ({source.name}); "
                                 f"start from {start_ms:.3f} ms")
            current = model
            state = {"version": STATE_VERSION, "args": args, "start_ms": start_ms, "floor_ms": floor,
                     "start_measured_ms": measured,
                     "current_ms": start_ms, "iteration": 0, "start_accuracy": evaluate(model, val),
                     "done": False, "iterations": []}
        else:
            space = TableSpace.from_model(current)
        while (state["current_ms"] > budget_ms and state["iteration"] < max_iterations
               and not state.get("stalled")):
            current, space = _iteration(current, space, state, pricer, train, val, budget_ms, step,
                                        short_term_steps, learning_rate, seed, keep, on_train_loss)
            save_model(current, paths["current"])
            save_json(paths["log"], _log(state, source))
            save_json(paths["state"], state)
        if not state["done"]:
            if current is model:               # nothing to cut: tune a copy, never the caller's model
                current = space.build().model
                inherit(model, current)
            losses = train_epochs(current, train, long_term_epochs, long_term_learning_rate or learning_rate,
                                  seed + 7919)
            if losses is not None:
                _report_loss(on_train_loss, "long_term", state["iteration"], None, losses)
            state["final_accuracy"] = evaluate(current, val)
            state["done"] = True
            save_model(current, paths["result"], paths["current"])
            save_json(paths["state"], state)
            save_json(paths["log"], _log(state, source))
        source.save()
        return current
    finally:
        if tmp is not None:
            tmp.cleanup()


def _resume(paths, args):
    """(state, model) of an earlier run with the same arguments, else (None, None)."""
    import keras
    if not os.path.isfile(paths["current"]):
        return None, None
    state = read_state(paths["state"], STATE_VERSION, args, "search")
    if state is None:
        return None, None
    model = keras.models.load_model(paths["result"] if state.get("done") else paths["current"])
    return state, model


def _iteration(current, space, state, pricer, train, val, budget_ms, step, short_term_steps,
               learning_rate, seed, keep=None, on_train_loss=None):
    """One NetAdapt iteration: a proposal per knob, each short-term tuned; keeps the best."""
    it = state["iteration"] + 1
    target = max(state["current_ms"] - step * state["start_ms"], budget_ms)
    built = space.build()
    inherit(current, built.model)          # the space's own graph, holding the current weights
    proposals = []
    knobs = [k for k in space.knobs() if keep is None or keep(k)]
    bar = progress(len(knobs), f"NetAdapt iteration {it} (target {target:.2f} ms)")
    try:
        for j, knob in enumerate(knobs):
            bar.update(1)
            found = _proposal(pricer, space, state["current_ms"], built, knob, target)
            if found is None:
                continue
            value, ms, reaches = found
            if ms >= state["current_ms"]:
                continue
            proposals.append({"knob": knob, "value": value, "predicted_ms": ms, "reaches": reaches})
    finally:
        bar.close()
    reached = any(p["reaches"] for p in proposals)
    if reached:
        proposals = [p for p in proposals if p["reaches"]]
    if not proposals:
        state["stalled"] = True
        state["iterations"].append({"iteration": it, "target_ms": target, "proposals": [],
                                    "note": "no knob can shrink the model further"})
        state["iteration"] = it
        return current, space
    rows = []
    best = None
    current_acc = state["iterations"][-1]["accuracy"] if state["iterations"] and "accuracy" in \
        state["iterations"][-1] else state["start_accuracy"]
    for j, p in enumerate(proposals):
        knob = p["knob"]
        child_space = space.set(knob, p["value"])
        child = child_space.build().model
        inherit(built.model, child, _kept(built, space, knob, p["value"]))
        s = seed + 1000 * it + j
        losses = train_batches(child, train.steps(short_term_steps, s), learning_rate, s, short_term_steps)
        _report_loss(on_train_loss, "short_term", it, knob.label, losses)
        acc = evaluate(child, val)
        rows.append({"knob": knob.label, "kind": knob.kind, "rows": list(knob.rows), "stem": knob.stem,
                     "from": space.value(knob), "to": p["value"], "predicted_ms": p["predicted_ms"],
                     "reaches_target": p["reaches"], "accuracy": acc})
        if reached:
            score = (acc, -p["predicted_ms"])
        else:
            rows[-1]["loss_per_ms"] = _loss_per_ms(current_acc, acc, state["current_ms"] - p["predicted_ms"])
            score = (-rows[-1]["loss_per_ms"], -p["predicted_ms"])
        if best is None or score > best[0]:
            best = (score, j, child, child_space)
    _, j, child, child_space = best
    acc = rows[j]["accuracy"]
    child_ms = pricer.source.predict_ms(child)
    state["iterations"].append({"iteration": it, "target_ms": target, "proposals": rows, "chosen": j,
                                "rule": "most_accurate" if reached else "least_loss_per_ms",
                                "predicted_ms": child_ms, "accuracy": acc})
    state.update(iteration=it, current_ms=child_ms)
    return child, child_space


def _report_loss(on_train_loss, phase, iteration, knob, losses):
    if on_train_loss is not None and losses:
        on_train_loss({"phase": phase, "iteration": iteration, "knob": knob, "losses": losses})


def _loss_per_ms(accuracy_before, accuracy, ms_removed):
    """Accuracy lost per ms removed (MobileNetV3's NetAdapt variant ranks proposals by this ratio);
    a proposal losing nothing costs 0, so among those the largest cut wins the tie-break."""
    return max(accuracy_before - accuracy, 0.0) / ms_removed


def _log(state, source):
    return {"model": state["args"]["model"], "latency": source.name, "budget_ms": state["args"]["budget_ms"],
            "start_ms": state["start_ms"], "floor_ms": state["floor_ms"], "current_ms": state["current_ms"],
            "start_accuracy": state["start_accuracy"],
            "final_accuracy": state.get("final_accuracy"), "done": state["done"],
            "iterations": state["iterations"],
            "chosen_path": [{"iteration": r["iteration"], **r["proposals"][r["chosen"]]}
                            for r in state["iterations"] if r.get("proposals")]}


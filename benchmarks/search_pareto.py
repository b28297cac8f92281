"""NetAdapt vs the uniform width multiplier at equal measured int8 LiteRT latency (issue 17 evidence).

    python benchmarks/search_pareto.py                                  # both models, seeds 0 1 2
    python benchmarks/search_pareto.py --models MobileNetV3Small --seeds 0 --quick --name search_pareto_quick
    python benchmarks/search_pareto.py --quick --models MobileNetV3Small --edgetpu-seeds 0 --edgetpu-only \
        --name search_pareto_quick --work W         # step 8 added to a finished run (W: its --work)
    python benchmarks/search_pareto.py --merge results/a.json results/b.json --name both   # seeds run apart

Task: keras_mobile.data.digits.hard_digits at `--size` px (one fixed draw of training images,
of which the last `--val` are NetAdapt's selection set and never trained on by either arm; the
fixed 10,000-image test set scores every model). Per model and seed:

  1. parent: the full-width model trained from scratch for `--pretrain-steps` (Adam, linear
     warmup to `--pretrain-lr`, cosine decay to 1 % of it).
  2. the matched baseline's architecture (MobileNetV3 `alpha`, a MobileNetV4 table scaled by
     `TableSpace.scaled`, both at `--multiplier`) is timed against the parent as int8 LiteRT
     files (interleaved); NetAdapt's budget is the parent's predicted latency times that
     measured ratio, so the search aims at the baseline's latency.
  3. NetAdapt (`keras_mobile.search.netadapt`, latency "host-int8": the block table of this CPU
     calibrated on the parent) from the parent, `--step`, `--short-term-steps`,
     `--long-term-epochs`. Its lineage sees P + k*S + L training steps (k iterations).
  4. baselines trained with exactly that budget: the matched multiplier from scratch
     (the parent's P pretraining steps and schedule, k*S steps at `--lr`, then L steps at the
     long-term lr, the same batches as NetAdapt's long-term phase), and full width (the parent
     continued for k*S, then L steps).
  4b. (unless `--no-slim`) latency-driven slimming (`keras_mobile.search.slim`) from the same
     parent to the same predicted budget and source: supernet trained for NetAdapt's search
     steps (all its proposals x S, at `--lr`), the extracted model then L long-term steps.
     Its lineage (P + proposals*S + L) is longer than NetAdapt's; it is reported, not matched.
  5. every model is exported to int8 TFLite and timed in interleaved rounds (single invokes,
     1 thread, `tflite.inspect.make_interpreter`); ratios are medians of per-round ratios.
     "Equal latency" = NetAdapt / matched baseline within +-5 %. Accuracy is the float Keras
     model's on the test set, the difference paired over the same images (standard error).
  6. "speed at equal accuracy": the latency at which the baseline curve (matched multiplier,
     full width; linear in accuracy between them) reaches NetAdapt's accuracy, over NetAdapt's.
  7. predicted vs measured: every model on NetAdapt's chosen path (rebuilt from search.json,
     weights inherited from the parent) predicted by the calibrated table vs measured whole.
  8. (seeds in `--edgetpu-seeds`) the same search from the same parent with the EdgeTPU
     roofline as the latency source and the same budget fraction: predicted ms only, plus its
     accuracy and its host latency.

No augmentation beyond what hard_digits draws; same optimizer (Adam), batch size, images and
evaluation for all arms. Writes results/search_pareto.json, .md and .png after every stage.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import bench_workers  # noqa: E402  (interleaved rounds, median of per-round ratios)
from _setup import commit  # noqa: E402

CLOCK = "invoke CPU time"      # what `timed` measures (since 6cb0ba2; wall time before)
UNKNOWN_CLOCK = "not recorded"
MIXED = "latencies timed with different clocks: "     # merge's note, made anew from the runs' clocks

MODELS = ("MobileNetV3Small", "MobileNetV4ConvS")
# matched baselines near 0.7x the full model's int8 latency at 32 px on this CPU (dry run:
# V3Small alpha 0.5 = 0.71x, V4ConvS scaled 0.75 = 0.72x, 0.5 = 0.43x)
MULTIPLIERS = {"MobileNetV3Small": 0.5, "MobileNetV4ConvS": 0.75}
EQUAL = 0.05          # "equal latency": within +-5 %
GOAL_POINTS = 1.0     # issue 17: >= 1 point higher held-out accuracy at equal latency


def config(args):
    return {k: getattr(args, k) for k in ("size", "train", "val", "test", "batch_size", "pretrain_steps",
                                          "pretrain_lr", "step", "short_term_steps", "long_term_epochs", "lr",
                                          "long_term_lr", "multipliers", "knobs", "max_iterations", "rounds",
                                          "slim")}


# models ----------------------------------------------------------------------------------------
def build(name, multiplier, size):
    """`name` at a uniform width multiplier, logits head for 10 classes."""
    from keras_mobile.applications.registry import get_model
    from keras_mobile.search import TableSpace
    kw = dict(weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None)
    if name.startswith("MobileNetV3"):
        return get_model(name)(alpha=multiplier, **kw)
    full = get_model(name)(**kw)
    return full if multiplier == 1.0 else TableSpace.from_model(full).scaled(multiplier).build().model


def chosen_path_models(parent, log):
    """The model after each NetAdapt iteration (rebuilt from search.json, weights from `parent`)."""
    from keras_mobile.search import Knob, TableSpace
    from keras_mobile.search.inherit import inherit
    space, out = TableSpace.from_model(parent), []
    for step, it in zip(log["chosen_path"], [i for i in log["iterations"] if i.get("proposals")]):
        space = space.set(Knob(step["kind"], tuple(step["rows"]), step["stem"]), step["to"])
        m = space.build().model
        inherit(parent, m)
        out.append((it["iteration"], it["predicted_ms"], m))
    return out


# training / scoring ------------------------------------------------------------------------------
def train(model, data, steps, lr, seed):
    """`steps` Adam batches of `data` in the order NetAdapt's own fine-tuning draws them for `seed`
    (`lr` a number or a Keras schedule)."""
    from keras_mobile.search.training import train_batches
    if steps:
        train_batches(model, data.steps(steps, seed), lr, seed, steps)


def pretrain(model, data, args, seed):
    """From scratch: `--pretrain-steps` Adam batches, linear warmup (5 %) to `--pretrain-lr`, then
    cosine decay to 1 % of it. A constant 1e-3 learns hard_digits slowly (MobileNetV3Small, 32 px,
    20,000 images: 22 % test accuracy after 1,200 steps), and 3e-3 not at all."""
    from keras_mobile.training.schedules import cosine_with_warmup
    n = args.pretrain_steps
    if n:
        train(model, data, n, cosine_with_warmup(args.pretrain_lr, n, n // 20, final_lr=args.pretrain_lr / 100), seed)


def cached(path, make):
    """The model saved at `path`, else make() saved there (a restarted run skips finished training)."""
    import keras
    if os.path.isfile(path):
        return keras.models.load_model(path)
    model = make()
    from keras_mobile.search.training import save_model
    save_model(model, path)
    return model


def correct(model, x, y):
    """Per-image top-1 hits of the float model."""
    return np.asarray(model.predict(x, batch_size=256, verbose=0)).argmax(-1) == y


def paired(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    return 100 * float(d.mean()), 100 * float(d.std(ddof=1) / np.sqrt(len(d)))


# latency ---------------------------------------------------------------------------------------
def int8_blobs(models):
    from keras_mobile.analysis.latency_table import to_tflite
    return {k: to_tflite(m, "int8") for k, m in models.items()}


def timed(blobs, rounds, warmup=20, budget=60.0):
    """Per file: ms of single invokes in interleaved rounds (1 thread), by the clock the latency
    table is calibrated with (`invoke_clock(1)`: the invoke's CPU time)."""
    from keras_mobile.analysis.latency_timing import invoke_clock
    from keras_mobile.tflite.inspect import make_interpreter, random_inputs
    its = {k: random_inputs(make_interpreter(b, num_threads=1)) for k, b in blobs.items()}
    ts = bench_workers.interleaved({k: it.invoke for k, it in its.items()}, rounds, warmup, budget,
                                   min(rounds, 100), clock=invoke_clock(1))
    return {k: [t * 1e3 for t in v] for k, v in ts.items()}


def ratio(ts, a, b):
    return bench_workers.ratio(ts[a], ts[b])


def median_ms(ts):
    return {k: statistics.median(v) for k, v in ts.items()}


# one model, one seed ---------------------------------------------------------------------------
def run_model(args, name, seed, data, work, res, save):
    """Fills res[f"{name}/seed{seed}"] stage by stage (save() after each)."""
    import keras

    from keras_mobile.search import get_source, netadapt
    from keras_mobile.search.training import Data
    (x, y), (xv, yv), (xt, yt) = data
    size = args.size
    tr = Data((x, y), (size, size, 3), args.batch_size, "train")
    epoch_steps = len(x) // args.batch_size
    L = args.long_term_epochs * epoch_steps
    key = f"{name}/seed{seed}"
    r = res["runs"].setdefault(key, {"model": name, "seed": seed})
    d = os.path.join(work, key.replace("/", "_"))
    os.makedirs(d, exist_ok=True)
    t0 = time.time()

    def say(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {key}: {msg} (load {os.getloadavg()[0]:.1f})", flush=True)

    # 1. parent
    def make_parent():
        keras.utils.set_random_seed(seed)
        m = build(name, 1.0, size)
        pretrain(m, tr, args, seed)
        return m
    parent = cached(os.path.join(d, "parent.keras"), make_parent)
    hits = {"parent": correct(parent, xt, yt)}
    r["parent"] = {"steps": args.pretrain_steps, "accuracy": float(hits["parent"].mean()),
                   "wall_s": time.time() - t0}

    say(f"parent trained, accuracy {r['parent']['accuracy']:.4f}")

    # 2. the matched baseline's latency sets the budget
    mult = args.multipliers[name]
    src = get_source("host-int8", cache_path=os.path.join(work, "host_t1_int8.json"))
    bpath = os.path.join(d, "budget.json")
    if os.path.isfile(bpath):            # a restarted run keeps the budget its search was started with
        r["budget"] = json.load(open(bpath))
    else:
        keras.utils.set_random_seed(seed + 1)
        matched = build(name, mult, size)
        from keras_mobile.tflite.representative import set_bn_statistics
        set_bn_statistics(matched, x[:64])         # int8 scales of a trained net (XNNPACK checks them)
        ts = timed(int8_blobs({"parent": parent, "matched": matched}), args.rounds)
        target_ratio = ratio(ts, "matched", "parent")
        start_measured = src.calibrate(parent)
        start_pred = src.predict_ms(parent)
        r["budget"] = {"matched_over_parent_measured": target_ratio, "parent_predicted_ms": start_pred,
                       "parent_measured_ms_at_calibration": start_measured, "budget_ms": start_pred * target_ratio,
                       "correction": dict(src.table.correction)}
        with open(bpath, "w") as f:
            json.dump(r["budget"], f, default=float)
    src.table.correction = dict(r["budget"]["correction"])
    budget, start_pred = r["budget"]["budget_ms"], r["budget"]["parent_predicted_ms"]
    target_ratio = r["budget"]["matched_over_parent_measured"]
    save()
    say(f"budget {budget:.3f} ms = {target_ratio:.3f} x parent")

    # 3. NetAdapt (host-int8)
    t1 = time.time()
    child = netadapt(parent, budget, (x, y), (xv, yv), latency=src, step=args.step,
                     short_term_steps=args.short_term_steps, long_term_epochs=args.long_term_epochs,
                     out_dir=os.path.join(d, "netadapt_host"), seed=seed, batch_size=args.batch_size,
                     learning_rate=args.lr, long_term_learning_rate=args.long_term_lr,
                     knobs=None if args.knobs == "all" else {args.knobs}, max_iterations=args.max_iterations,
                     on_train_loss=lambda r: say(f"NetAdapt {r['phase']} it {r['iteration']} {r['knob'] or ''}: "
                                                 f"loss {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f} "
                                                 f"({len(r['losses'])} steps)"))
    log = json.load(open(os.path.join(d, "netadapt_host", "search.json")))
    k = sum(1 for i in log["iterations"] if i.get("proposals"))
    proposals = sum(len(i["proposals"]) for i in log["iterations"])
    lineage = args.pretrain_steps + k * args.short_term_steps + L
    hits["netadapt"] = correct(child, xt, yt)
    r["netadapt"] = {"iterations": k, "proposals_tuned": proposals, "lineage_steps": lineage,
                     "search_steps_total": args.pretrain_steps + proposals * args.short_term_steps + L,
                     "predicted_ms": log["current_ms"], "accuracy": float(hits["netadapt"].mean()),
                     "val_accuracy": log["final_accuracy"], "params": child.count_params(),
                     "chosen_path": [{kk: c[kk] for kk in ("knob", "from", "to", "predicted_ms", "accuracy")}
                                     for c in log["chosen_path"]],
                     "wall_s": time.time() - t1}
    save()
    say(f"NetAdapt done: {k} iterations, {proposals} proposals, accuracy {r['netadapt']['accuracy']:.4f}")

    # 4. baselines with the same budget
    t2 = time.time()
    def make_matched():
        keras.utils.set_random_seed(seed + 1)
        m = build(name, mult, size)
        pretrain(m, tr, args, seed)                          # the parent's schedule and batches
        train(m, tr, k * args.short_term_steps, args.lr, seed + 1)
        train(m, tr, L, args.long_term_lr, seed + 7919)      # NetAdapt's long-term batches
        return m

    def make_full():
        m = keras.models.clone_model(parent)
        m.set_weights(parent.get_weights())
        train(m, tr, k * args.short_term_steps, args.lr, seed + 1)
        train(m, tr, L, args.long_term_lr, seed + 7919)
        return m
    matched = cached(os.path.join(d, f"matched_k{k}.keras"), make_matched)
    full = cached(os.path.join(d, f"full_k{k}.keras"), make_full)
    hits["matched"], hits["full"] = correct(matched, xt, yt), correct(full, xt, yt)
    r["baselines"] = {"matched": {"multiplier": mult, "steps": lineage, "params": matched.count_params(),
                                  "accuracy": float(hits["matched"].mean())},
                      "full": {"multiplier": 1.0, "steps": lineage, "params": full.count_params(),
                               "accuracy": float(hits["full"].mean())},
                      "wall_s": time.time() - t2}
    save()
    say(f"baselines trained: matched {r['baselines']['matched']['accuracy']:.4f}, "
        f"full {r['baselines']['full']['accuracy']:.4f}")

    # 4b. latency-driven slimming from the same parent to the same predicted budget
    slimmed = run_slim(args, r, parent, budget, src, data, tr, d, k, proposals, L, seed, say) if args.slim else None
    if slimmed is not None:
        hits["slim"] = correct(slimmed, xt, yt)
        r["slim"]["accuracy"] = float(hits["slim"].mean())
        save()

    # 5-7. timing: the arms, and NetAdapt's chosen path for predicted vs measured
    path = chosen_path_models(parent, log)
    models = {"netadapt": child, "matched": matched, "full": full}
    if slimmed is not None:
        models["slim"] = slimmed
    models.update({f"path{i}": m for i, _, m in path})
    ts = timed(int8_blobs(models), args.rounds)
    med = median_ms(ts)
    r["timing"] = {"median_ms": med, "rounds": len(ts["netadapt"]), "load1": os.getloadavg()[0],
                   "netadapt_over_matched": ratio(ts, "netadapt", "matched"),
                   "netadapt_over_full": ratio(ts, "netadapt", "full"),
                   "matched_over_full": ratio(ts, "matched", "full")}
    r["timing"]["equal_latency"] = abs(r["timing"]["netadapt_over_matched"] - 1) <= EQUAL
    diff, se = paired(hits["netadapt"], hits["matched"])
    r["equal_latency"] = {"accuracy_diff_points": diff, "se_points": se}
    if slimmed is not None:
        r["timing"].update(slim_over_matched=ratio(ts, "slim", "matched"), slim_over_netadapt=ratio(ts, "slim", "netadapt"),
                           slim_over_full=ratio(ts, "slim", "full"))
        for arm, (a, b) in (("slim_vs_matched", ("slim", "matched")), ("netadapt_vs_slim", ("netadapt", "slim"))):
            diff, se = paired(hits[a], hits[b])
            r["slim"][arm] = {"accuracy_diff_points": diff, "se_points": se}
    r["equal_accuracy_speedup"] = speedup(r)
    r["prediction"] = [{"iteration": i, "predicted_ms": p, "measured_ms": med[f"path{i}"],
                        "error_pct": 100 * (p / med[f"path{i}"] - 1),
                        "predicted_ratio_to_start": p / start_pred,
                        "measured_ratio_to_full": ratio(ts, f"path{i}", "full"),
                        "ratio_error_pct": 100 * ((p / start_pred) / ratio(ts, f"path{i}", "full") - 1)}
                       for i, p, _ in path]
    r["prediction_mape_pct"] = float(np.mean([abs(e["error_pct"]) for e in r["prediction"]])) if path else None
    r["prediction_ratio_mape_pct"] = (float(np.mean([abs(e["ratio_error_pct"]) for e in r["prediction"]]))
                                      if path else None)
    r["wall_s"] = time.time() - t0
    save()
    say(f"timed: NetAdapt / matched {r['timing']['netadapt_over_matched']:.3f}")

    return r


def run_slim(args, r, parent, budget, src, data, tr, d, k, proposals, L, seed, say):
    """Slimming (`keras_mobile.search.slim`, the same calibrated host-int8 source and predicted budget
    as NetAdapt): a supernet from the parent trained for NetAdapt's search steps (proposals x
    short-term, at `--lr`), the extracted sub-network then fine-tuned with NetAdapt's long-term
    batches. Fills r["slim"]; None when slimming fails (its error recorded and its traceback
    printed): the arm is an addition, its failure must not cost NetAdapt's timing, which follows."""
    from keras_mobile.search import slim
    (x, y), (xv, yv), _ = data
    steps, t0 = proposals * args.short_term_steps, time.time()
    out = os.path.join(d, "slim_host")

    def make():
        m = slim(parent, budget, (x, y), (xv, yv), latency=src, steps=steps, finetune_epochs=0, out_dir=out,
                 seed=seed, batch_size=args.batch_size, learning_rate=args.lr)
        train(m, tr, L, args.long_term_lr, seed + 7919)
        return m
    try:
        model = cached(os.path.join(d, f"slim_k{k}.keras"), make)
    except Exception as e:     # noqa: BLE001  (any failure: a budget it cannot reach is a ValueError)
        import traceback
        traceback.print_exc()
        r["slim"] = {"error": f"{type(e).__name__}: {e}"}
        say(f"slimming failed: {r['slim']['error']}")
        return None
    log = json.load(open(os.path.join(out, "slim.json")))
    r["slim"] = {"supernet_steps": steps, "finetune_steps": L, "lineage_steps": args.pretrain_steps + steps + L,
                 "predicted_ms": log["predicted_ms"], "budget_ms": budget, "min_ms": log["min_ms"],
                 "val_accuracy_before_finetune": log["accuracy"], "params": model.count_params(),
                 "rows_changed": sum(1 for c in log["choices"] if c["pick"] != 0),
                 "choice_rows": len(log["choices"]),
                 "picks": {str(c["row"]): _block(c["candidates"][c["pick"]]) for c in log["choices"]},
                 "wall_s": time.time() - t0}
    say(f"slimming done: predicted {log['predicted_ms']:.3f} ms (budget {budget:.3f}), "
        f"{r['slim']['rows_changed']}/{r['slim']['choice_rows']} rows changed")
    return model


def _block(c):
    """'ir/k5', 'uir/k3', 'identity': a slimming candidate in a table cell."""
    return c["type"] if c["type"] == "identity" or not c["kernel"] else f"{c['type']}/k{c['kernel']}"


def run_edgetpu(args, name, seed, data, work, res, save):
    """8. The same search from the same parent against the EdgeTPU roofline (predicted only)."""
    import keras

    from keras_mobile.search import get_source, netadapt
    (x, y), (xv, yv), (xt, yt) = data
    key = f"{name}/seed{seed}"
    r = res["runs"][key]
    d = os.path.join(work, key.replace("/", "_"))
    k = r["netadapt"]["iterations"]
    parent = keras.models.load_model(os.path.join(d, "parent.keras"))
    child = keras.models.load_model(os.path.join(d, "netadapt_host", "model.keras"))
    matched = keras.models.load_model(os.path.join(d, f"matched_k{k}.keras"))
    budget, start_pred = r["budget"]["budget_ms"], r["budget"]["parent_predicted_ms"]
    t3 = time.time()
    tpu = get_source("edgetpu")
    tpu_start = tpu.predict_ms(parent)
    echild = netadapt(parent, tpu_start * budget / start_pred, (x, y), (xv, yv), latency=tpu, step=args.step,
                      short_term_steps=args.short_term_steps, long_term_epochs=args.long_term_epochs,
                      out_dir=os.path.join(d, "netadapt_edgetpu"), seed=seed, batch_size=args.batch_size,
                      learning_rate=args.lr, long_term_learning_rate=args.long_term_lr,
                      knobs=None if args.knobs == "all" else {args.knobs}, max_iterations=args.max_iterations)
    elog = json.load(open(os.path.join(d, "netadapt_edgetpu", "search.json")))
    ets = timed(int8_blobs({"edgetpu_search": echild, "netadapt": child, "matched": matched}), args.rounds)
    r["edgetpu_search"] = {
        "start_predicted_ms": tpu_start, "budget_ms": elog["budget_ms"], "predicted_ms": elog["current_ms"],
        "host_search_result_predicted_ms": tpu.predict_ms(child),
        "matched_baseline_predicted_ms": tpu.predict_ms(matched),
        "iterations": sum(1 for i in elog["iterations"] if i.get("proposals")),
        "accuracy": float(correct(echild, xt, yt).mean()),
        "host_int8_over_matched": ratio(ets, "edgetpu_search", "matched"),
        "chosen_path": [{kk: c[kk] for kk in ("knob", "from", "to", "predicted_ms", "accuracy")}
                        for c in elog["chosen_path"]],
        "wall_s": time.time() - t3}
    save()


def speedup(r):
    """Baseline latency at NetAdapt's accuracy (linear between matched and full) / NetAdapt's."""
    t = r["timing"]
    a_na = r["netadapt"]["accuracy"]
    pts = sorted([(r["baselines"]["matched"]["accuracy"], t["matched_over_full"]), (r["baselines"]["full"]["accuracy"], 1.0)])
    na = t["netadapt_over_full"]
    (a0, l0), (a1, l1) = pts
    if a_na > a1:
        return {"speedup": max(l0, l1) / na, "bound": "at least (NetAdapt beats both baselines)"}
    if a_na < a0:
        return {"speedup": min(l0, l1) / na, "bound": "at most (NetAdapt below both baselines)"}
    lat = l0 + (l1 - l0) * (a_na - a0) / (a1 - a0) if a1 > a0 else min(l0, l1)
    return {"speedup": lat / na, "bound": "interpolated"}


# report ----------------------------------------------------------------------------------------
def render(res):
    c = res["config"]
    lines = ["# NetAdapt vs uniform width multiplier at equal measured int8 latency", "",
             f"hard_digits at {c['size']} px, {c['train']} training images ({c['val']} more held out for "
             f"NetAdapt's proposal selection), {c['test']} test images; batch {c['batch_size']}, Adam lr "
             f"{c['lr']} (long-term {c['long_term_lr']}). Pretraining {c['pretrain_steps']} steps (warmup + cosine, peak "
             f"{c.get('pretrain_lr', c['lr'])}), NetAdapt step "
             f"{c['step']} (knobs: {c.get('knobs', 'all')}, at most {c.get('max_iterations', 100)} iterations), short-term {c['short_term_steps']} steps per proposal, long-term "
             f"{c['long_term_epochs']} epoch(s). Matched baseline: width multiplier {c['multipliers']} "
             f"(MobileNetV3 `alpha`, MobileNetV4 `TableSpace.scaled`), trained from scratch with the NetAdapt "
             f"model's lineage budget (pretraining + k x short-term + long-term steps); full width: the "
             f"parent continued to the same budget. Latency: int8 LiteRT files, 1 thread, single invokes in "
             f"interleaved rounds, medians of per-round ratios; equal latency = within +-5 %. Accuracy: float "
             f"model on the test set, difference paired over images (+- standard error). "
             f"Protocol details: benchmarks/search_pareto.py docstring.", ""]
    runs = list(res["runs"].values())
    lines += ["| model | seed | parent acc | NetAdapt acc | matched acc | full acc | NetAdapt / matched latency | "
              "equal? | acc diff (points) | speed-up at equal acc | NetAdapt ms | matched ms | full ms | iterations | "
              "steps (lineage / search total) |", "|" + "---|" * 15]
    for r in runs:
        if "timing" not in r:
            lines.append(f"| {r['model']} | {r['seed']} | {_g(r, 'parent', 'accuracy', p=True)} | "
                         f"{_g(r, 'netadapt', 'accuracy', p=True)} | (running) |" + " |" * 10)
            continue
        t, b, s = r["timing"], r["baselines"], r["equal_accuracy_speedup"]
        lines.append(
            f"| {r['model']} | {r['seed']} | {100 * r['parent']['accuracy']:.2f} | {100 * r['netadapt']['accuracy']:.2f} | "
            f"{100 * b['matched']['accuracy']:.2f} | "
            f"{100 * b['full']['accuracy']:.2f} | {t['netadapt_over_matched']:.3f} | {'yes' if t['equal_latency'] else 'NO'} | "
            f"{r['equal_latency']['accuracy_diff_points']:+.2f} +- {r['equal_latency']['se_points']:.2f} | "
            f"{s['speedup']:.2f}x ({s['bound']}) | {t['median_ms']['netadapt']:.3f} | {t['median_ms']['matched']:.3f} | "
            f"{t['median_ms']['full']:.3f} | {r['netadapt']['iterations']} | {r['netadapt']['lineage_steps']} / "
            f"{r['netadapt']['search_steps_total']} |")
    done = [r for r in runs if "timing" in r]
    if done:
        lines += ["", "Mean over seeds:", "", "| model | seeds | acc diff at equal latency (points) | speed-up at "
                  "equal accuracy | prediction MAPE (absolute ms) | prediction MAPE (ratio to start) |", "|---|---|---|---|---|---|"]
        for m in sorted({r["model"] for r in done}):
            rs = [r for r in done if r["model"] == m]
            mape = [r["prediction_mape_pct"] for r in rs if r["prediction_mape_pct"] is not None]
            rmape = [r["prediction_ratio_mape_pct"] for r in rs if r["prediction_ratio_mape_pct"] is not None]
            lines.append(f"| {m} | {len(rs)} | {np.mean([r['equal_latency']['accuracy_diff_points'] for r in rs]):+.2f} | "
                         f"{np.mean([r['equal_accuracy_speedup']['speedup'] for r in rs]):.2f}x | "
                         f"{np.mean(mape) if mape else float('nan'):.1f} % | {np.mean(rmape) if rmape else float('nan'):.1f} % |")
        lines += render_across_seeds(done)
        lines += render_conditions(done, res.get("clock", UNKNOWN_CLOCK))
        lines += ["", "Goal: >= 1 point higher accuracy at equal latency, or >= 1.2x faster at equal accuracy; "
                  "prediction within 5 % mean absolute error.", "",
                  "## Predicted vs measured latency (host-int8 table, calibrated on the parent)", "",
                  "| model | seed | iteration | predicted ms | measured ms | error | predicted / start | "
                  "measured / full | ratio error |", "|---|---|---|---|---|---|---|---|---|"]
        for r in done:
            for e in r["prediction"]:
                lines.append(f"| {r['model']} | {r['seed']} | {e['iteration']} | {e['predicted_ms']:.3f} | "
                             f"{e['measured_ms']:.3f} | {e['error_pct']:+.1f} % | {e['predicted_ratio_to_start']:.3f} | "
                             f"{e['measured_ratio_to_full']:.3f} | {e['ratio_error_pct']:+.1f} % |")
    slims = [r for r in done if "accuracy" in r.get("slim", {})]
    if slims:
        lines += ["", "## Latency-driven slimming at the same predicted budget", "",
                  "Supernet (`search.slim`: MobileNetV3 IR kernel 3 / 5 / identity, MobileNetV4 UIB variants / "
                  "identity) from the same parent, trained for NetAdapt's search steps (proposals x short-term), "
                  "then the long-term batches; its lineage is longer than NetAdapt's (see steps).", "",
                  "| model | seed | slim acc | NetAdapt acc | matched acc | slim / matched latency | slim / NetAdapt "
                  "latency | slim - matched (points) | NetAdapt - slim (points) | slim ms | rows changed | "
                  "steps (supernet / lineage) |", "|" + "---|" * 12]
        for r in slims:
            sl, t = r["slim"], r["timing"]
            lines.append(
                f"| {r['model']} | {r['seed']} | {100 * sl['accuracy']:.2f} | {100 * r['netadapt']['accuracy']:.2f} | "
                f"{100 * r['baselines']['matched']['accuracy']:.2f} | {t['slim_over_matched']:.3f} | "
                f"{t['slim_over_netadapt']:.3f} | {sl['slim_vs_matched']['accuracy_diff_points']:+.2f} +- "
                f"{sl['slim_vs_matched']['se_points']:.2f} | {sl['netadapt_vs_slim']['accuracy_diff_points']:+.2f} +- "
                f"{sl['netadapt_vs_slim']['se_points']:.2f} | {t['median_ms']['slim']:.3f} | "
                f"{sl['rows_changed']}/{sl['choice_rows']} | {sl['supernet_steps']} / {sl['lineage_steps']} |")
        lines += ["", "Slimming picks (row: block): " + "; ".join(
            f"{r['model']} s{r['seed']}: " + ", ".join(f"{i}: {v}" for i, v in r["slim"]["picks"].items())
            for r in slims)]
    for r in runs:
        if "error" in r.get("slim", {}):
            lines += ["", f"Slimming {r['model']} seed {r['seed']}: {r['slim']['error']}"]
    tpu = [r for r in runs if "edgetpu_search" in r]
    if tpu:
        lines += ["", "## The same search with the EdgeTPU roofline as the latency source (predicted)", "",
                  "| model | seed | start ms | budget ms | result ms | host-search result ms | matched baseline ms | "
                  "accuracy | host int8 latency / matched | iterations |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in tpu:
            e = r["edgetpu_search"]
            lines.append(f"| {r['model']} | {r['seed']} | {e['start_predicted_ms']:.4f} | {e['budget_ms']:.4f} | "
                         f"{e['predicted_ms']:.4f} | {e['host_search_result_predicted_ms']:.4f} | "
                         f"{e['matched_baseline_predicted_ms']:.4f} | {100 * e['accuracy']:.2f} | "
                         f"{e['host_int8_over_matched']:.3f} | {e['iterations']} |")
        lines.append("")
        lines.append("Chosen paths (knob: from -> to):")
        for r in runs:
            for arm, k in (("host-int8", "netadapt"), ("edgetpu", "edgetpu_search")):
                if k in r:
                    path = ", ".join(f"{c['knob']} {c['from']}->{c['to']}" for c in r[k]["chosen_path"])
                    lines.append(f"- {r['model']} seed {r['seed']} {arm}: {path}")
    if res.get("notes"):
        lines += ["", "## Findings", ""] + [f"- {n}" for n in res["notes"]]
    loads = ", ".join(f"{r['timing']['load1']:.1f}" for r in done) or "n/a"
    lines += ["", f"Load (1 min) at the end of each timing: {loads}; "
              f"wall time {res.get('wall_s', 0) / 60:.0f} min. Status: {res.get('status', 'running')}."]
    return "\n".join(lines) + "\n"


def across_seeds(diffs, goal=GOAL_POINTS, resamples=10000):
    """Per-seed accuracy differences (points) summarised: mean, median, how many reach `goal`, the
    exact one-sided sign test of "the median difference is above `goal`" (p = P(at least that many
    of the seeds off `goal` above it | each side 1/2); seeds exactly at `goal` are dropped, as the
    test does), and a 95 % percentile bootstrap interval of the mean over seeds (fixed seed)."""
    from math import comb
    d = np.asarray(diffs, dtype=np.float64)
    above, off = int((d > goal).sum()), int((d != goal).sum())
    p = sum(comb(off, i) for i in range(above, off + 1)) / 2 ** off if off else 1.0
    means = np.random.default_rng(0).choice(d, (resamples, len(d))).mean(1)
    return {"n": len(d), "mean": float(d.mean()), "median": float(np.median(d)),
            "at_goal": int((d >= goal).sum()), "sign_test_p": p,
            "bootstrap_ci95": (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))}


def render_across_seeds(done):
    """Markdown: per model and arm, the per-seed difference to the matched baseline, its latency
    ratios and `across_seeds` of the differences."""
    lines = ["", f"Across seeds (differences to the matched baseline in points; goal >= +{GOAL_POINTS:g}; sign test: "
             f"exact, one-sided, H0 median <= +{GOAL_POINTS:g}; CI: 95 % percentile bootstrap of the mean over "
             f"seeds, 10,000 resamples; latency outside +-{EQUAL:.0%} marked):", "",
             "| model | arm | seeds | per seed (latency / matched) | mean | median | seeds >= goal | sign test p | "
             "bootstrap 95 % CI |", "|---|---|---|---|---|---|---|---|---|"]
    arms = (("NetAdapt - matched", lambda r: r["equal_latency"], "netadapt_over_matched"),
            ("slimming - matched", lambda r: r.get("slim", {}).get("slim_vs_matched"), "slim_over_matched"))
    for m in sorted({r["model"] for r in done}):
        for arm, get, lat in arms:
            rs = [r for r in done if r["model"] == m and get(r)]
            if not rs:
                continue
            d = [get(r)["accuracy_diff_points"] for r in rs]
            s = across_seeds(d)
            per = ", ".join(f"s{r['seed']} {x:+.1f} ({r['timing'][lat]:.3f}{_unequal(r['timing'][lat])})"
                            for r, x in zip(rs, d))
            lines.append(f"| {m} | {arm} | {s['n']} | {per} | {s['mean']:+.2f} | {s['median']:+.2f} | "
                         f"{s['at_goal']}/{s['n']} | {s['sign_test_p']:.3f} | "
                         f"[{s['bootstrap_ci95'][0]:+.1f}, {s['bootstrap_ci95'][1]:+.1f}] |")
    return lines


def render_conditions(done, clock):
    """Markdown: per run, how it was measured (the clock of its latencies, the 1-min load when its
    timing ended, the rounds), its prediction error and the wall time of each stage (a stage that
    found its model cached in --work shows its loading time)."""
    lines = ["", "Per run: latency clock, load, prediction error (mean abs over NetAdapt's chosen path) and wall "
             "time per stage (min; parent = pretraining, baselines = matched + full width; a stage whose models were "
             "cached in --work by an earlier run shows ~0):", "",
             "| model | seed | clock | load (1 min) at timing | timing rounds | prediction MAPE (ms / ratio to start) | "
             "parent | NetAdapt | baselines | slimming | total |", "|" + "---|" * 11]
    for r in done:
        mins = [f"{r[k]['wall_s'] / 60:.0f}" if "wall_s" in r.get(k, {}) else "-"
                for k in ("parent", "netadapt", "baselines", "slim")]
        mape = (f"{r['prediction_mape_pct']:.1f} % / {r['prediction_ratio_mape_pct']:.1f} %"
                if r.get("prediction_mape_pct") is not None else "-")
        lines.append(f"| {r['model']} | {r['seed']} | {r.get('clock', clock)} | {r['timing']['load1']:.1f} | "
                     f"{r['timing']['rounds']} | {mape} | {' | '.join(mins)} | {r.get('wall_s', 0) / 60:.0f} |")
    return lines


def _unequal(ratio):
    """'' at equal latency (within EQUAL), else which way the arm is off the baseline."""
    return "" if abs(ratio - 1) <= EQUAL else (", faster" if ratio < 1 else ", slower")


def _g(r, *keys, p=False):
    for k in keys:
        if not isinstance(r, dict) or k not in r:
            return "-"
        r = r[k]
    return f"{100 * r:.2f}" if p else str(r)


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = sorted({r["model"] for r in res["runs"].values() if "timing" in r})
    if not models:
        return
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.2), squeeze=False)
    for ax, m in zip(axes[0], models):
        labelled = set()

        def label(text):           # each arm once in the legend, whichever seeds the results hold
            if text in labelled:
                return None
            labelled.add(text)
            return text
        for r in (r for r in res["runs"].values() if r["model"] == m and "timing" in r):
            med, b = r["timing"]["median_ms"], r["baselines"]
            ax.plot([med["matched"], med["full"]], [100 * b["matched"]["accuracy"], 100 * b["full"]["accuracy"]],
                    "o--", color="tab:gray", label=label("width multiplier"))
            ax.plot(med["netadapt"], 100 * r["netadapt"]["accuracy"], "*", ms=12, color="tab:red",
                    label=label("NetAdapt (host-int8)"))
            ax.annotate(f"s{r['seed']}", (med["netadapt"], 100 * r["netadapt"]["accuracy"]), fontsize=7)
            if "slim" in med:
                ax.plot(med["slim"], 100 * r["slim"]["accuracy"], "D", ms=7, color="tab:blue",
                        label=label("slimming (host-int8)"))
        ax.set_title(f"{m}, hard_digits {res['config']['size']} px")
        ax.set_xlabel("measured int8 LiteRT latency, 1 thread (ms)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# the reduced configuration (20-45 min per model and seed at load 2-7): defaults under --quick, which options
# given on the command line override. Its parent must learn the task, or nothing is compared: the
# earlier quick run (32 px, 2,000 images, 600 steps at a constant 1e-3) memorised its training
# images (51 % on them, 21 % on new draws of the same source digits, 14 % on the test set), and at
# 32 px with 20,000 images the same steps reach 12 %. 48 px, 20,000 images and 2,400 warmup +
# cosine steps at a 2e-3 peak: 56 % after 1,500 steps in a probe (~4 min at load 8). All knobs:
# with output widths alone the smallest MobileNetV3Small is predicted at 0.86x the parent
# (host-int8, 32 px), above the alpha-0.5 budget (0.71x), so the search refused to start. At 48 px
# MobileNetV3Small seed 0 needed 5 iterations to reach that budget (no single knob cuts 15 %; four
# stopped at 0.73x predicted, one at 0.92x): at most 6.
QUICK = dict(size=48, train=20000, val=500, test=10000, pretrain_steps=2400, short_term_steps=10,
             long_term_epochs=1, step=0.15, rounds=300, edgetpu_seeds=[], knobs="all", max_iterations=6)


def check_work(work, cfg):
    """Refuses a `--work` folder made with other settings (its cached parents, budgets and
    searches would mix into this run); records the settings of a new one. Multipliers are
    compared for the models both runs have."""
    path = os.path.join(work, "settings.json")
    cfg = json.loads(json.dumps(cfg))
    if not os.path.isfile(path):
        if any(os.path.isdir(os.path.join(work, f)) for f in os.listdir(work)):
            raise ValueError(f"--work {work} holds runs but no settings.json (made by an older version of "
                             f"this script); use another --work folder or delete it")
        old = cfg
    else:
        with open(path) as f:
            old = json.load(f)
    diff = config_diff(old, cfg, skip=("multipliers",))
    mult = dict(old.get("multipliers", {}))
    diff += [f"multiplier of {m}: {mult[m]!r} there, {v!r} here" for m, v in sorted(cfg["multipliers"].items())
             if m in mult and mult[m] != v]
    if diff:
        raise ValueError(f"--work {work} was made with other settings ({'; '.join(diff)}); use another "
                         f"--work folder or the same settings")
    from keras_mobile.files import write_atomic
    write_atomic(path, json.dumps({**cfg, "multipliers": {**mult, **cfg["multipliers"]}}, indent=1).encode())


def config_diff(old, new, skip=()):
    """'key: old there, new here' for every setting (outside `skip`) that differs."""
    return [f"{k}: {old.get(k)!r} there, {new.get(k)!r} here" for k in sorted(set(old) | set(new))
            if k not in skip and old.get(k) != new.get(k)]


def merge(results):
    """One results dict from runs of the same settings made apart (e.g. seeds 0-2, then 3-5): all
    their runs, ordered by model and seed, their notes in the order given, "complete" or the other
    statuses they have. Different settings,
    or a model and seed present in two of them, are refused (which of the two would count?)."""
    if not results:
        raise ValueError("--merge needs at least one results JSON")
    first, runs = results[0], {}
    for i, res in enumerate(results[1:], 1):
        diff = config_diff(first["config"], res["config"])
        if diff:
            raise ValueError(f"results 1 and {i + 1} were made with other settings ({'; '.join(diff)})")
    for res in results:
        for key, r in res["runs"].items():
            if key in runs:
                raise ValueError(f"{key} is in more than one of the results to merge")
            runs[key] = r
    clocks = {}
    for res in results:
        for key, r in res["runs"].items():
            r.setdefault("clock", res.get("clock", UNKNOWN_CLOCK))      # per run, so a merged file merges again
            clocks.setdefault(r["clock"], []).append(key)
    mixed = [MIXED + "; ".join(f"{c}: {', '.join(k)}" for c, k in clocks.items())
             ] * (len(clocks) > 1)
    return {"config": first["config"], "clock": "; ".join(clocks),
            "commits": [c for r in results for c in (r.get("commits") or [r.get("commit")])],
            "runs": dict(sorted(runs.items(), key=lambda kv: (kv[1]["model"], kv[1]["seed"]))),
            "status": "; ".join(dict.fromkeys(r.get("status", "running") for r in results
                                              if r.get("status") != "complete")) or "complete",
            "wall_s": sum(r.get("wall_s", 0) for r in results),
            "notes": [n for r in results for n in r.get("notes", []) if not n.startswith(MIXED)] + mixed}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--edgetpu-seeds", nargs="*", type=int, default=[0])
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--val", type=int, default=1000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--pretrain-steps", type=int, default=6000)
    p.add_argument("--pretrain-lr", type=float, default=2e-3, help="peak of the pretraining's warmup + cosine")
    p.add_argument("--step", type=float, default=0.1)
    p.add_argument("--short-term-steps", type=int, default=30)
    p.add_argument("--long-term-epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--long-term-lr", type=float, default=3e-4)
    p.add_argument("--multiplier", type=float, default=None,
                   help=f"the matched baseline's width multiplier (default per model: {MULTIPLIERS})")
    p.add_argument("--knobs", default="all", choices=("all", "mid", "out"),
                   help="which NetAdapt knobs to search (expansion widths, residual-tied output widths)")
    p.add_argument("--max-iterations", type=int, default=100)
    p.add_argument("--no-slim", dest="slim", action="store_false",
                   help="skip the latency-driven slimming arm")
    p.add_argument("--rounds", type=int, default=400, help="interleaved timing rounds (single invokes)")
    p.add_argument("--quick", action="store_true",
                   help=f"a small configuration (the slow test's): defaults {QUICK}; options given win")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--name", default="search_pareto")
    p.add_argument("--work", default=None, help="searches' out_dirs and the latency table (default: a temp dir)")
    p.add_argument("--edgetpu-only", action="store_true",
                   help="only add the EdgeTPU-source search of --edgetpu-seeds to the results in --out/--name "
                        "(their finished host runs; --work holding their models)")
    p.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                   help="only combine these results files (same settings, other seeds) into --out/--name "
                        "and render them; nothing is trained or timed")
    a = p.parse_args(argv)
    if a.quick:
        # quick changes defaults, before anything is derived from them (it used to overwrite the
        # parsed options afterwards: options given with --quick were lost, and its multiplier
        # was set after the per-model multipliers had been read, so it never applied)
        p.set_defaults(**QUICK)
        a = p.parse_args(argv)
    a.multipliers = {m: a.multiplier or MULTIPLIERS[m] for m in a.models}
    return a


def results_for_edgetpu(stem, args):
    """The results at stem.json that --edgetpu-only adds to: made with the same settings, with a
    finished (timed) host run of every --models model for every --edgetpu-seeds seed."""
    path = stem + ".json"
    if not args.edgetpu_seeds:
        raise ValueError("--edgetpu-only needs the seeds to search in --edgetpu-seeds")
    if not os.path.isfile(path):
        raise ValueError(f"--edgetpu-only adds to {path}, which does not exist: run the host comparison first")
    with open(path) as f:
        res = json.load(f)
    diff = config_diff(res["config"], config(args))
    if diff:
        raise ValueError(f"{path} was made with other settings ({'; '.join(diff)})")
    missing = [f"{m}/seed{s}" for s in args.edgetpu_seeds for m in args.models
               if "timing" not in res["runs"].get(f"{m}/seed{s}", {})]
    if missing:
        raise ValueError(f"{path} has no finished host run of {', '.join(missing)}")
    if not args.work:
        raise ValueError("--edgetpu-only needs --work: the folder of the host run's models")
    k = {f"{m}/seed{s}": res["runs"][f"{m}/seed{s}"]["netadapt"]["iterations"]
         for s in args.edgetpu_seeds for m in args.models}        # finished host runs (checked above)
    absent = [p for s in args.edgetpu_seeds for m in args.models
              for p in (os.path.join(args.work, f"{m}_seed{s}", f) for f in
                        ("parent.keras", os.path.join("netadapt_host", "model.keras"), f"matched_k{k[f'{m}/seed{s}']}.keras"))
              if not os.path.isfile(p)]
    if absent:
        raise ValueError(f"--work {args.work} lacks the host run's models: {', '.join(absent)}")
    return res


def write(res, stem):
    """stem.json, stem.md and stem.png of `res`."""
    from keras_mobile.files import write_atomic
    write_atomic(stem + ".json", json.dumps(res, indent=1, default=float).encode())
    write_atomic(stem + ".md", render(res).encode())
    plot(res, stem + ".png")


def main(argv=None):
    import tempfile

    a = parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, a.name)
    if a.merge:
        results = []
        for path in a.merge:
            with open(path) as f:
                results.append(json.load(f))
        res = merge(results)
        write(res, stem)
        return res
    from keras_mobile.data.digits import hard_digits
    # before any work, a wrong results file or --work folder fails at once
    res = results_for_edgetpu(stem, a) if a.edgetpu_only else {"config": config(a), "clock": CLOCK, "commit": commit(),
                                                                "runs": {}, "status": "running"}
    work = a.work or tempfile.mkdtemp(prefix="search_pareto-")
    os.makedirs(work, exist_ok=True)
    check_work(work, config(a))
    t0, wall0 = time.time(), res.get("wall_s", 0)
    (x, y), test = hard_digits(a.train + a.val, a.test, a.size, seed=0)
    data = ((x[:a.train], y[:a.train]), (x[a.train:], y[a.train:]), test)

    def save():
        res["wall_s"] = wall0 + time.time() - t0
        write(res, stem)

    for seed in a.edgetpu_seeds if a.edgetpu_only else a.seeds:
        stages = [] if a.edgetpu_only else [(run_model, name) for name in a.models]
        if seed in a.edgetpu_seeds:        # after the host comparison of every model of the seed
            stages += [(run_edgetpu, name) for name in a.models]
        for stage, name in stages:
            try:
                stage(a, name, seed, data, work, res, save)
            except Exception as e:         # noqa: BLE001  (record it; the other stages still run)
                if a.edgetpu_only:         # adding to finished results: leave them as they were
                    raise
                import traceback
                traceback.print_exc()
                res["runs"].setdefault(f"{name}/seed{seed}", {"model": name, "seed": seed}).setdefault(
                    "errors", []).append(f"{stage.__name__}: {type(e).__name__}: {e}")
                save()
            print(f"{stage.__name__} {name} seed {seed} done after {(time.time() - t0) / 60:.1f} min; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    if a.edgetpu_only:      # the host run's status stands; say what was added
        res.setdefault("notes", []).append(f"EdgeTPU-source search of seed(s) {a.edgetpu_seeds} added with --edgetpu-only")
    else:
        res["status"] = "complete"
    save()
    return res


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"search_pareto: {e}")

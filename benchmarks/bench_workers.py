"""Benchmark workers, each run in its own subprocess by benchmarks/run.py:

    python benchmarks/bench_workers.py CONFIG_JSON OUT_JSON

`keras` (one process per thread count: TensorFlow fixes its thread pools at start-up), `tflite`
(LiteRT interpreters at every thread count) and `torch` (timm; torch and TensorFlow in one
process segfault). Members of a group are timed in interleaved rounds and the ratio of a pair
is the median of its per-round ratios, so load from other processes cancels out. Each worker
rewrites OUT_JSON after every group, so a crash keeps what was measured.
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import bench_models  # noqa: E402


def interleaved(fns, runs, warmup, budget, min_runs, clock=time.perf_counter):
    """Times every callable of `fns` once per round, for up to `runs` rounds (fewer when the
    group exceeds `budget` seconds, but at least `min_runs`). Returns {key: [seconds, ...]}.
    `clock`: wall time by default; one-thread LiteRT invokes can pass
    `latency_timing.invoke_clock(1)` (CPU time: preemption on a loaded machine does not count).
    The loop is `latency_timing.round_robin_times`, the package's one timing loop."""
    from keras_mobile.analysis.latency_timing import round_robin_times
    keys = list(fns)
    times = round_robin_times([fns[k] for k in keys], 1, runs, warmup, seconds=budget, clock=clock,
                              min_runs=min_runs)
    return dict(zip(keys, times))


def summary(ts, batch):
    med = statistics.median(ts)
    return {"ms": med * 1e3, "img_s": batch / med, "runs": len(ts)}


def ratio(a, b):
    """Median of per-round ratios a[i] / b[i] (the pair ran back to back in each round)."""
    return statistics.median(x / y for x, y in zip(a, b))


def _timing(cfg, batch):
    big = batch > 1
    return dict(runs=cfg["runs_big" if big else "runs"], warmup=cfg["warmup_big" if big else "warmup"],
                budget=cfg["budget_big" if big else "budget"], min_runs=cfg["min_runs_big" if big else "min_runs"])


def _progress(cfg, total):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=cfg["desc"], unit="model", file=sys.stderr, leave=True, mininterval=2)


def _dump(res, out):
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, out)


# ----------------------------------------------------------------------------------------------
def worker_keras(cfg, out):
    import numpy as np
    from _setup import tensorflow_threads
    tf = tensorflow_threads(cfg["threads"])
    from keras_mobile.analysis.profile import profile
    res = {"models": {}, "ratios": {}}
    bar = _progress(cfg, sum(map(len, cfg["groups"])))
    for group in cfg["groups"]:
        models = {n: bench_models.build(n) for n in group}
        for n, m in models.items():
            res["models"][n] = {"input": list(m.inputs[0].shape[1:]), "params": m.count_params(),
                                "trainable_params": int(sum(np.prod(w.shape) for w in m.trainable_weights)),
                                "load1": os.getloadavg()[0]}
            try:
                if cfg.get("profile", True):
                    res["models"][n]["macs"] = profile(m).macs
            except Exception as e:  # noqa: BLE001  (a baseline graph the profiler does not know)
                res["models"][n]["macs_error"] = str(e)[:200]
        for a, c in bench_models.pairs(group):
            if c.startswith(bench_models.KERAS_APPS):   # why a ratio is what it is: layer census
                res.setdefault("graphs", {})[f"{a} / {c}"] = {"ours": _census(models[a]), "apps": _census(models[c])}
        for b in cfg["batches"]:
            calls = {}
            for n, m in models.items():
                shape = (b,) + tuple(m.inputs[0].shape[1:])
                f = tf.function(lambda x, m=m: m(x, training=False), autograph=False)
                f.get_concrete_function(tf.TensorSpec(shape, tf.float32))   # trace outside the timing
                x = tf.constant(np.random.default_rng(0).standard_normal(shape).astype("float32"))
                calls[n] = lambda f=f, x=x: f(x).numpy()
            times = interleaved(calls, **_timing(cfg, b))
            for n, ts in times.items():
                res["models"][n][f"b{b}"] = summary(ts, b)
            for a, c in bench_models.pairs(group):
                res["ratios"].setdefault(f"{a} / {c}", {})[f"b{b}"] = ratio(times[a], times[c])
        bar.update(len(group))
        bar.set_postfix_str(group[0])
        del models, calls
        _dump(res, out)


def _census(model):
    counts = {}
    for layer in model.layers:
        counts[type(layer).__name__] = counts.get(type(layer).__name__, 0) + 1
    return dict(sorted(counts.items()))


def _saved_model(model, folder):
    """Exports the batch-1 inference graph once; both quantizations convert from it. This is
    what TFLiteConverter.from_keras_model does internally (keras_mobile.tflite.export), minus
    repeating the export (the larger half of the time) for every quantization."""
    import keras
    import tensorflow as tf
    from keras_mobile.tflite.export import fixed_batch
    static, shape = fixed_batch(model, 1)
    archive = keras.export.ExportArchive()
    archive.track(static)
    archive.add_endpoint("serve", lambda x: static(x, training=False),
                         input_signature=[tf.TensorSpec(shape, tf.float32)])
    t0 = time.perf_counter()
    archive.write_out(folder, verbose=False)
    return shape, time.perf_counter() - t0


def _convert(folder, shape, quant, calib):
    """(.tflite bytes, seconds) as keras_mobile.tflite.export.converter_for configures it, float IO."""
    import numpy as np
    import tensorflow as tf
    from keras_mobile.analysis.latency_timing import _quiet
    conv = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serve"])
    if quant == "int8":
        rep = np.random.default_rng(0).uniform(-1, 1, (calib,) + tuple(shape)).astype("float32")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.representative_dataset = lambda: ([x] for x in rep)
    t0 = time.perf_counter()
    with _quiet():
        blob = conv.convert()
    return blob, time.perf_counter() - t0


def _interpreter(blob, threads):
    from keras_mobile.tflite.inspect import make_interpreter, random_inputs
    return random_inputs(make_interpreter(blob, num_threads=threads))


def _op_counts(it):
    from keras_mobile.tflite.inspect import op_details
    counts = {}
    for op in op_details(it):
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def worker_tflite(cfg, out):
    res = {"models": {}, "ratios": {}}
    bar = _progress(cfg, sum(map(len, cfg["groups"])))
    for group in cfg["groups"]:
        interps = {}
        for n in group:
            entry = res["models"].setdefault(n, {"load1": os.getloadavg()[0]})
            folder = tempfile.mkdtemp(prefix="kmbench_sm")
            try:
                shape, entry["export_s"] = _saved_model(bench_models.build(n), folder)
            except Exception as e:  # noqa: BLE001
                entry["error"] = (str(e).strip().splitlines() or ["?"])[-1][:300]
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for q in cfg["quants_for"].get(n, cfg["quants"]):
                try:
                    blob, secs = _convert(folder, shape, q, cfg["calib"])
                except Exception as e:  # noqa: BLE001
                    entry[q] = {"error": (str(e).strip().splitlines() or ["?"])[-1][:300]}
                    continue
                entry[q] = {"convert_s": secs, "size_mb": len(blob) / 2 ** 20}
                for t in cfg["threads"]:
                    interps[(n, q, t)] = _interpreter(blob, t)
                ops = _op_counts(interps[(n, q, cfg["threads"][0])])
                entry[q].update(ops=sum(ops.values()), conv2d=ops.get("CONV_2D", 0),
                                depthwise=ops.get("DEPTHWISE_CONV_2D", 0))
                del blob
            shutil.rmtree(folder, ignore_errors=True)
        times = interleaved({k: it.invoke for k, it in interps.items()}, **_timing(cfg, 1))
        for (n, q, t), ts in times.items():
            res["models"][n][q][f"t{t}"] = summary(ts, 1)
        for a, c in bench_models.pairs(group):
            for q in cfg["quants"]:
                for t in cfg["threads"]:
                    if (a, q, t) in times and (c, q, t) in times:
                        res["ratios"].setdefault(f"{a} / {c}", {})[f"{q}_t{t}"] = ratio(times[(a, q, t)],
                                                                                          times[(c, q, t)])
        del interps
        bar.update(len(group))
        bar.set_postfix_str(group[0])
        _dump(res, out)


def worker_torch(cfg, out):
    import torch
    import timm
    from timm.utils.model import reparameterize_model
    res = {"models": {}, "ratios": {}, "timm": {}}
    bar = _progress(cfg, sum(map(len, cfg["groups"])))
    for group in cfg["groups"]:
        group = [n for n in group if n in bench_models.TIMM and n in cfg["sizes"]]
        models = {}
        for n in group:
            m = timm.create_model(bench_models.TIMM[n], pretrained=False, num_classes=1000).eval()
            models[n] = reparameterize_model(m) if n.endswith("[fused]") else m
            res["timm"][n] = bench_models.TIMM[n] + (" + reparameterize_model" if n.endswith("[fused]") else "")
            res["models"][n] = {"load1": os.getloadavg()[0], "input": cfg["sizes"][n],
                                "params": sum(p.numel() for p in models[n].parameters())}
        for t in cfg["threads"]:
            torch.set_num_threads(t)
            for b in cfg["batches"]:
                calls = {}
                for n, m in models.items():
                    x = torch.randn(b, 3, cfg["sizes"][n], cfg["sizes"][n])
                    calls[n] = lambda m=m, x=x: m(x)
                with torch.inference_mode():
                    times = interleaved(calls, **_timing(cfg, b))
                for n, ts in times.items():
                    res["models"][n][f"t{t}_b{b}"] = summary(ts, b)
                for a, c in bench_models.pairs(group):
                    res["ratios"].setdefault(f"{a} / {c}", {})[f"t{t}_b{b}"] = ratio(times[a], times[c])
        bar.update(max(1, len(group)))
        del models
        _dump(res, out)


WORKERS = {"keras": worker_keras, "tflite": worker_tflite, "torch": worker_torch}

if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        config = json.load(f)
    WORKERS[config["part"]](config, sys.argv[2])

"""`keras-mobile benchmark [MODELS...]`: quick latency table on this machine.

Per model: MACs, Keras (tf.function) batch-1 latency and batch-N throughput, optionally
LiteRT float32 latency (--tflite), the latency-table prediction (--lut FILE) and the roofline
prediction for the measured host (--roofline). The full suite (threads, int8, timm,
keras.applications baselines) is `python benchmarks/run.py`.
"""
import statistics
import time

help = "latency / throughput of models on this machine (Keras, optional TFLite, LUT and roofline predictions)"


def add_arguments(p):
    p.add_argument("models", nargs="*", help="constructor names (default: MobileNetV4ConvS MobileNetV3Small)")
    p.add_argument("--image-size", type=int, default=None, help="square input size (default: the model's)")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--batch", type=int, default=8, help="batch size for the throughput column (0 = skip)")
    p.add_argument("--tflite", action="store_true", help="also time a float32 .tflite in LiteRT (at 1 thread the invoke's CPU time: time other "
                   "processes take on a loaded machine is not counted)")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads")
    p.add_argument("--lut", default=None, help="latency-table JSON: predict from it (measured blocks are added)")
    p.add_argument("--roofline", action="store_true", help="add a roofline prediction for this host (measured)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")


def _median_time(fn, runs, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def run(args):
    import json

    import numpy as np
    import tensorflow as tf

    from keras_mobile.analysis.profile import profile
    from keras_mobile.applications.registry import get_model
    from keras_mobile.progress import progress_bar
    names = args.models or ["MobileNetV4ConvS", "MobileNetV3Small"]
    ctors = [get_model(n) for n in names]   # fail early on a bad name
    host = table = None
    if args.roofline:
        from keras_mobile.analysis.hardware import measure_host
        host = measure_host(seconds=0.3)
    if args.lut:
        from keras_mobile.analysis.latency_table import LatencyTable
        table = LatencyTable.load_or_new(args.lut, num_threads=args.threads)
    rows = []
    for name, ctor in progress_bar(list(zip(names, ctors)), desc="benchmark", unit="model"):
        kw = {"weights": None}
        if args.image_size:
            kw["input_shape"] = (args.image_size, args.image_size, 3)
        m = ctor(**kw)
        size = tuple(m.inputs[0].shape[1:])
        prof = profile(m)
        f = tf.function(lambda x: m(x, training=False), reduce_retracing=True)
        rng = np.random.default_rng(0)
        x1 = tf.constant(rng.standard_normal((1,) + size).astype("float32"))
        row = {"model": name, "input": "x".join(map(str, size[:2])), "mmacs": prof.macs / 1e6,
               "keras_b1_ms": _median_time(lambda: f(x1).numpy(), args.runs) * 1e3}
        if args.batch:
            xb = tf.constant(rng.standard_normal((args.batch,) + size).astype("float32"))
            row[f"keras_b{args.batch}_img_s"] = args.batch / _median_time(lambda: f(xb).numpy(),
                                                                          max(2, args.runs // 3), 1)
        if args.tflite:
            from keras_mobile.analysis.latency_table import time_tflite, to_tflite
            from keras_mobile.tflite.export import fixed_batch
            static, _ = fixed_batch(m, 1)
            row["tflite_fp32_ms"] = time_tflite(to_tflite(static), args.threads, runs=args.runs) * 1e3
        if table is not None:
            table.measure_model(m, runs=max(3, args.runs // 2), progress=True)
            row["lut_pred_ms"] = table.predict(m) * 1e3
        if host is not None:
            from keras_mobile.analysis.roofline import roofline
            row["roofline_ms"] = roofline(prof, host).seconds * 1e3
        rows.append(row)
    if table is not None:
        table.save(args.lut)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.rjust(widths[c]) if c != "model" else c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) if c != "model" else r[c].ljust(widths[c]) for c in cols))
    if host is not None:
        print(f"roofline host: {host.peak_macs / 1e9:.1f} GMAC/s, {host.bandwidth / 1e9:.1f} GB/s "
              f"(ridge {host.ridge:.1f} MACs/byte)")
    if args.json:
        from keras_mobile.files import write_atomic
        write_atomic(args.json, json.dumps(rows, indent=1).encode())
    return 0


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
    return str(v)

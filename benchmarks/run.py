"""keras_mobile benchmarks: one command, JSON + a markdown table.

    python benchmarks/run.py [--quick] [--models A B ...] [--out benchmarks/results]

Measures, on this machine (CPU):
  * Keras (TF backend) latency (batch 1) and throughput (batch 32) at 1 and 2 threads for every
    package model and for keras.applications.MobileNetV3Large/Small (weights=None, no
    preprocessing layer) built the same way; ratio ours / keras.applications for our MNv3.
  * TFLite float32 and int8 (tf.lite.TFLiteConverter directly, random representative data):
    conversion time, file size, LiteRT latency at 1 and 2 threads; keras.applications MNv3
    exported the same way.
  * timm / PyTorch CPU latency and throughput (if torch + timm are installed) and ratio.
  * Mobile MQA vs MHSA on the same MobileNetV4HybridM config (`attention="mha"`).
  * MobileOne fused vs unfused comes from benchmarks/mobileone_fusion.py (its JSON is rendered
    into the table when present).

TensorFlow fixes its thread pools at start-up, so each thread count runs in a subprocess.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

QUICK_MODELS = ["MobileNetV3Small", "MobileNetV3Large", "MobileNetV4ConvS", "MobileNetV4HybridM",
                "MobileNetV4HybridM[mha]", "MobileOneS0", "EfficientFormerL1"]
KERAS_APPS = ["keras.applications.MobileNetV3Small", "keras.applications.MobileNetV3Large"]
TIMM = {"MobileNetV3Large": "mobilenetv3_large_100", "MobileNetV3Small": "mobilenetv3_small_100",
        "MobileNetV4ConvS": "mobilenetv4_conv_small", "MobileNetV4ConvM": "mobilenetv4_conv_medium",
        "MobileNetV4ConvL": "mobilenetv4_conv_large", "MobileNetV4HybridM": "mobilenetv4_hybrid_medium",
        "MobileNetV4HybridL": "mobilenetv4_hybrid_large", "MobileOneS0": "mobileone_s0",
        "MobileOneS1": "mobileone_s1", "MobileOneS2": "mobileone_s2", "MobileOneS3": "mobileone_s3",
        "MobileOneS4": "mobileone_s4", "EfficientFormerL1": "efficientformer_l1",
        "EfficientFormerL3": "efficientformer_l3", "EfficientFormerL7": "efficientformer_l7"}
OURS_VS_KERAS = {"MobileNetV3Large": "keras.applications.MobileNetV3Large",
                 "MobileNetV3Small": "keras.applications.MobileNetV3Small"}


def all_models():
    from keras_mobile.analysis.registry import names
    return names() + ["MobileNetV4HybridM[mha]"]


def build(name, batch_size=None):
    """A model by benchmark name: package constructor, `X[mha]`, or keras.applications.X."""
    import keras
    if name.startswith("keras.applications."):
        ctor = getattr(keras.applications, name.rsplit(".", 1)[1])
        return ctor(weights=None, input_shape=(224, 224, 3), include_preprocessing=False)
    import keras_mobile
    kwargs = {"weights": None}
    if name.endswith("[mha]"):
        name, kwargs["attention"] = name[:-5], "mha"
    return getattr(keras_mobile, name)(**kwargs)


def _time(fn, runs, warmup, budget=None):
    for _ in range(warmup):
        fn()
    times, t_end = [], time.perf_counter() + budget if budget else None
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if t_end is not None and time.perf_counter() > t_end and len(times) >= 2:
            break
    return statistics.median(times), len(times)


# ----------------------------------------------------------------------------------------------
# workers (run in subprocesses)
def worker_keras(models, threads, batches, runs, out):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import numpy as np
    res = {}
    for name in models:
        m = build(name)
        f = tf.function(lambda x: m(x, training=False), reduce_retracing=True)
        size = tuple(m.inputs[0].shape[1:])
        for b in batches:
            x = tf.constant(np.random.default_rng(0).standard_normal((b,) + size).astype("float32"))
            med, n = _time(lambda: f(x).numpy(), runs if b == 1 else max(2, runs // 4), 2 if b == 1 else 1,
                           budget=20 if b == 1 else 30)
            res.setdefault(name, {})[f"b{b}"] = {"ms": med * 1e3, "img_s": b / med, "runs": n}
            print(f"keras t{threads} {name} b{b}: {med * 1e3:.1f} ms", file=sys.stderr, flush=True)
        res[name]["input"] = list(size)
        del m, f
    json.dump(res, open(out, "w"))


def worker_tflite(models, threads_list, runs, calib, out):
    import numpy as np
    import tensorflow as tf
    from keras_mobile.analysis.latency_table import _quiet, time_tflite
    res = {}
    tmp = tempfile.mkdtemp(prefix="kmbench")
    for name in models:
        m = build(name)
        size = tuple(m.inputs[0].shape[1:])
        import keras
        inp = keras.Input(batch_shape=(1,) + size)
        static = keras.Model(inp, m(inp, training=False))
        entry = {}
        for q in ("float32", "int8"):
            conv = tf.lite.TFLiteConverter.from_keras_model(static)
            if q == "int8":
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
                rng = np.random.default_rng(0)

                def rep():
                    for _ in range(calib):
                        yield [rng.uniform(-1, 1, (1,) + size).astype("float32")]
                conv.representative_dataset = rep
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            t0 = time.perf_counter()
            try:
                with _quiet():
                    blob = conv.convert()
            except Exception as e:  # noqa: BLE001
                entry[q] = {"error": str(e).splitlines()[0][:200]}
                continue
            d = {"convert_s": time.perf_counter() - t0, "size_mb": len(blob) / 2 ** 20}
            path = os.path.join(tmp, f"{name}.{q}.tflite")
            open(path, "wb").write(blob)
            for t in threads_list:
                d[f"t{t}_ms"] = time_tflite(path, num_threads=t, runs=runs, warmup=2, seconds=20) * 1e3
            entry[q] = d
            os.remove(path)
            print(f"tflite {name} {q}: {d}", file=sys.stderr, flush=True)
        res[name] = entry
    json.dump(res, open(out, "w"))


def worker_torch(models, threads_list, batches, runs, out):
    import torch
    import timm
    res = {}
    for name in models:
        arch = TIMM.get(name)
        if arch is None:
            continue
        import keras_mobile  # noqa: F401  (input size = ours)
        size = build(name).inputs[0].shape[1]
        tm = timm.create_model(arch, pretrained=False, num_classes=1000).eval()
        for t in threads_list:
            torch.set_num_threads(t)
            for b in batches:
                x = torch.randn(b, 3, size, size)
                with torch.inference_mode():
                    med, n = _time(lambda: tm(x), runs if b == 1 else max(2, runs // 4), 2 if b == 1 else 1,
                                   budget=20 if b == 1 else 30)
                res.setdefault(name, {})[f"t{t}_b{b}"] = {"ms": med * 1e3, "img_s": b / med, "runs": n}
                print(f"torch t{t} {name} b{b}: {med * 1e3:.1f} ms", file=sys.stderr, flush=True)
    json.dump(res, open(out, "w"))


# ----------------------------------------------------------------------------------------------
def _sub(args_list, desc):
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker"] + args_list + ["--worker-out", out]
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-5:])
        print(f"  {desc} failed:\n{tail}", file=sys.stderr)
        return {}, time.time() - t0
    with open(out) as f:
        data = json.load(f)
    os.remove(out)
    return data, time.time() - t0


def _torch_available():
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("timm") is not None
    except Exception:
        return False


def _versions():
    v = {"python": platform.python_version()}
    for mod in ("keras", "tensorflow", "ai_edge_litert", "torch", "timm"):
        try:
            import importlib.metadata as md
            v[mod] = md.version(mod.replace("_", "-")) if mod != "ai_edge_litert" else md.version("ai-edge-litert")
        except Exception:
            pass
    return v


def run(models, quick=False, threads=(1, 2), batches=(1, 32), out_dir=None, torch=True, progress=True):
    from tqdm.auto import tqdm
    from keras_mobile.analysis.profile import profile
    runs = 5 if quick else 30
    calib = 4 if quick else 100
    everything = list(models) + [k for k in KERAS_APPS if k not in models]
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "quick": quick, "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                                       "processor": platform.processor()},
              "versions": _versions(), "threads": list(threads), "batches": list(batches),
              "models": {}, "keras": {}, "tflite": {}, "torch": {}, "wall_s": {}}
    steps = [("keras", t) for t in threads] + [("tflite", None)] + ([("torch", None)] if torch else [])
    bar = tqdm(steps, desc="benchmarks", unit="part", disable=not progress)
    for part, t in bar:
        bar.set_postfix_str(f"{part}{'' if t is None else f' t{t}'}")
        if part == "keras":
            data, wall = _sub(["keras", "--threads", str(t), "--runs", str(runs), "--batches",
                               *map(str, batches), "--models", *everything], f"keras t{t}")
            for name, d in data.items():
                result["keras"].setdefault(name, {})[f"t{t}"] = d
        elif part == "tflite":
            data, wall = _sub(["tflite", "--runs", str(runs), "--calib", str(calib), "--threads-list",
                               *map(str, threads), "--models", *everything], "tflite")
            result["tflite"] = data
        else:
            data, wall = _sub(["torch", "--runs", str(runs), "--threads-list", *map(str, threads),
                               "--batches", *map(str, batches), "--models", *models], "torch")
            result["torch"] = data
        result["wall_s"][part + ("" if t is None else f"_t{t}")] = wall
    for name in everything:
        try:
            p = profile(build(name))
            result["models"][name] = {"macs": p.macs, "params": p.params, "input": list(p.input_shape)}
        except Exception as e:  # noqa: BLE001
            result["models"][name] = {"error": str(e)[:200]}
    fusion = os.path.join(HERE, "results", "mobileone_fusion.json")
    if os.path.exists(fusion):
        with open(fusion) as f:
            result["mobileone_fusion"] = json.load(f)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        stamp = "quick" if quick else "full"
        with open(os.path.join(out_dir, f"{stamp}.json"), "w") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(out_dir, "latest.json"), "w") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(out_dir, "latest.md"), "w") as f:
            f.write(render(result))
    return result


# ----------------------------------------------------------------------------------------------
def _g(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)


def render(r):
    th = r["threads"]
    lines = [f"# keras_mobile benchmarks ({'quick' if r['quick'] else 'full'} run, {r['date']})", "",
             f"Host: {r['host']['cpus']} CPUs ({r['host']['machine']}), "
             + ", ".join(f"{k} {v}" for k, v in r["versions"].items())
             + ". CPU only. Latency = median ms at batch 1; throughput = images/s at batch 32."
             + (" **Quick run on a shared, busy machine: indicative only.**" if r["quick"] else ""), ""]
    # Keras
    lines += ["## Keras 3 (TensorFlow backend), tf.function", "",
              "| model | input | MMACs | " + " | ".join(f"b1 ms t{t} | b32 img/s t{t}" for t in th)
              + " | ours / keras.applications (b1 t1) |",
              "|---|---|---:|" + "---:|---:|" * len(th) + "---:|"]
    for name, d in r["keras"].items():
        info = r["models"].get(name, {})
        cells = []
        for t in th:
            cells += [_f(_g(d, f"t{t}", "b1", "ms")), _f(_g(d, f"t{t}", "b32", "img_s"))]
        ratio = "-"
        if name in OURS_VS_KERAS:
            a, b = _g(d, f"t{th[0]}", "b1", "ms"), _g(r["keras"], OURS_VS_KERAS[name], f"t{th[0]}", "b1", "ms")
            if a and b:
                ratio = f"{a / b:.2f}"
        size = "x".join(map(str, (info.get("input") or [])[:2]))
        lines.append(f"| {name} | {size} | {_f(info.get('macs') and info['macs'] / 1e6, '{:,.0f}')} | "
                     + " | ".join(cells) + f" | {ratio} |")
    # TFLite
    lines += ["", "## TFLite (LiteRT interpreter, batch 1)", "",
              "| model | fp32 MB | fp32 convert s | " + " | ".join(f"fp32 ms t{t}" for t in th)
              + " | int8 MB | int8 convert s | " + " | ".join(f"int8 ms t{t}" for t in th) + " |",
              "|---|---:|---:|" + "---:|" * len(th) + "---:|---:|" + "---:|" * len(th)]
    for name, d in r["tflite"].items():
        row = [name]
        for q in ("float32", "int8"):
            e = d.get(q, {})
            if "error" in e:
                row += ["error"] + ["-"] * (1 + len(th))
                continue
            row += [_f(e.get("size_mb"), "{:.2f}"), _f(e.get("convert_s"))] + [_f(e.get(f"t{t}_ms"), "{:.2f}") for t in th]
        lines.append("| " + " | ".join(row) + " |")
    # torch
    if r.get("torch"):
        lines += ["", "## timm / PyTorch CPU vs keras_mobile (Keras, same threads)", "",
                  "| model | " + " | ".join(f"timm b1 ms t{t} | ours/timm b1 t{t} | timm b32 img/s t{t}" for t in th)
                  + " |", "|---|" + "---:|---:|---:|" * len(th)]
        for name, d in r["torch"].items():
            cells = []
            for t in th:
                tb1 = _g(d, f"t{t}_b1", "ms")
                ours = _g(r["keras"], name, f"t{t}", "b1", "ms")
                cells += [_f(tb1), _f(ours / tb1 if ours and tb1 else None, "{:.2f}"),
                          _f(_g(d, f"t{t}_b32", "img_s"))]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    # MQA vs MHSA
    mqa, mha = "MobileNetV4HybridM", "MobileNetV4HybridM[mha]"
    if mqa in r["keras"] and mha in r["keras"]:
        lines += ["", "## Mobile MQA vs MHSA (MobileNetV4HybridM, same config)", "",
                  "| attention | MMACs | params | Keras b1 ms t1 | Keras b32 img/s t1 | TFLite fp32 ms t1 | TFLite int8 ms t1 |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        t = th[0]
        for label, name in (("MQA", mqa), ("MHSA", mha)):
            info = r["models"].get(name, {})
            lines.append(f"| {label} | {_f(info.get('macs') and info['macs'] / 1e6, '{:,.0f}')} | "
                         f"{_f(info.get('params'), '{:,}')} | {_f(_g(r['keras'], name, f't{t}', 'b1', 'ms'))} | "
                         f"{_f(_g(r['keras'], name, f't{t}', 'b32', 'img_s'))} | "
                         f"{_f(_g(r['tflite'], name, 'float32', f't{t}_ms'), '{:.2f}')} | "
                         f"{_f(_g(r['tflite'], name, 'int8', f't{t}_ms'), '{:.2f}')} |")
    # MobileOne fusion (benchmarks/mobileone_fusion.py)
    fusion = r.get("mobileone_fusion")
    if fusion:
        lines += ["", "## MobileOne fused vs unfused (benchmarks/mobileone_fusion.py)", ""]
        lines += _render_generic(fusion)
    lut = r.get("latency_table") or _load(os.path.join(HERE, "results", "lut_eval.json"))
    if lut:
        lines += ["", f"## Latency lookup table vs measured (LiteRT fp32, batch 1, {lut.get('num_threads', 1)} thread)",
                  "", "| model | LUT predicted ms | measured ms | error |", "|---|---:|---:|---:|"]
        for n, d in lut["models"].items():
            lines.append(f"| {n} | {d['predicted_ms']:.2f} | {d['measured_ms']:.2f} | {d['error_pct']:+.1f}% |")
        lines += ["", f"Spearman rank correlation {lut['spearman']:.3f}, mean abs % error {lut['mape_pct']:.1f}% "
                  f"({lut.get('entries', '?')} distinct blocks; benchmarks/latency_table_eval.py)."]
    sweep = _load(os.path.join(HERE, "results", "ridge_sweep.json"))
    if sweep:
        lines += ["", "## Roofline ridge-point sweep (benchmarks/roofline_sweep.py, ridge_sweep.png)", "",
                  f"Predicted ms at {sweep['peak_macs'] / 1e12:g} TMAC/s peak, {sweep['dtype_bytes']}-byte values, "
                  "bandwidth = peak / ridge.", "",
                  "| model | MMACs | ridge 0.5 | ridge 5 | ridge 50 | ridge 500 |", "|---|---:|---:|---:|---:|---:|"]
        for n, d in sweep["models"].items():
            at = d["ms_at_ridge"]
            lines.append(f"| {n} | {d['macs'] / 1e6:,.0f} | " + " | ".join(f"{at[k]:.3f}" for k in ("0.5", "5", "50", "500"))
                         + " |")
    lines += ["", "Conversion wall time per part (s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in r.get("wall_s", {}).items()), ""]
    return "\n".join(lines)


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _render_generic(d):
    """A table from a JSON of {name: {metric: value}} or [{...}]; else a JSON block."""
    rows = d.get("results", d) if isinstance(d, dict) else d
    if isinstance(rows, dict) and all(isinstance(v, dict) for v in rows.values()):
        rows = [{"name": k, **{kk: vv for kk, vv in v.items() if not isinstance(vv, (dict, list))}}
                for k, v in rows.items()]
    if isinstance(rows, list) and rows and all(isinstance(x, dict) for x in rows):
        cols = list(dict.fromkeys(k for x in rows for k, v in x.items() if not isinstance(v, (dict, list))))
        out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for x in rows:
            out.append("| " + " | ".join(_cell(x.get(c)) for c in cols) + " |")
        return out
    return ["```json", json.dumps(d, indent=1)[:3000], "```"]


def _cell(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "-" if v is None else str(v)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few models, few repetitions (minutes)")
    p.add_argument("--models", nargs="*", default=None, help="benchmark names (default: all; quick: a subset)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--threads-list", type=int, nargs="*", default=[1, 2])
    p.add_argument("--batches", type=int, nargs="*", default=[1, 32])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--calib", type=int, default=100)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--render", default=None, help="only re-render this results JSON to markdown")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker == "keras":
        return worker_keras(a.models, a.threads, a.batches, a.runs, a.worker_out) or 0
    if a.worker == "tflite":
        return worker_tflite(a.models, a.threads_list, a.runs, a.calib, a.worker_out) or 0
    if a.worker == "torch":
        return worker_torch(a.models, a.threads_list, a.batches, a.runs, a.worker_out) or 0
    if a.render:
        with open(a.render) as f:
            md = render(json.load(f))
        with open(os.path.join(os.path.dirname(os.path.abspath(a.render)), "latest.md"), "w") as f:
            f.write(md)
        print(md)
        return 0
    models = a.models or (QUICK_MODELS if a.quick else all_models())
    r = run(models, quick=a.quick, threads=tuple(a.threads_list), batches=tuple(a.batches), out_dir=a.out,
            torch=not a.no_torch and _torch_available())
    print(render(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

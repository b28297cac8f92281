"""Markdown tables from a benchmarks/run.py results JSON (also the LUT and ridge-sweep JSONs)."""
import json
import os

import bench_models
from _setup import host_line

HERE = os.path.dirname(os.path.abspath(__file__))


SECTIONS = ("apps", "fusion", "mqa", "keras", "tflite", "torch", "lut", "sweep")


def _g(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _info(r, name):
    """Model facts (input, MACs, params) from the first Keras part that has them."""
    for t in r["threads"]:
        d = _g(r, "keras", f"t{t}", "models", name)
        if d:
            return d
    return {}


def _mmacs(r, name):
    return _f(_info(r, name).get("macs") and _info(r, name)["macs"] / 1e6, "{:,.0f}")


def _params(r, name, key="params"):
    return _f(_info(r, name).get(key) and _info(r, name)[key] / 1e6, "{:.2f}")


def _kms(r, name, t, b=1):
    return _g(r, "keras", f"t{t}", "models", name, f"b{b}", "ms" if b == 1 else "img_s")


def _tms(r, name, q, t):
    return _g(r, "tflite", "models", name, q, f"t{t}", "ms")


def _kratio(r, pair, t, b=1):
    return _g(r, "keras", f"t{t}", "ratios", pair, f"b{b}")


def _tratio(r, pair, q, t):
    return _g(r, "tflite", "ratios", pair, f"{q}_t{t}")


def render(r, sections=None):
    """Markdown for a results dict; `sections` picks a subset of SECTIONS (default: all)."""
    th, bs = r["threads"], r["batches"]
    big = max(bs)
    models = [n for g in r["groups"] for n in g]
    load = r.get("load", {})
    lines = [f"# keras_mobile benchmarks ({'quick' if r['quick'] else 'full'} run, {r['date']})", "",
             f"`{r.get('command', 'python benchmarks/run.py').strip()}` — total {r.get('total_s', 0) / 60:.1f} min. "
             f"Host: {host_line(r['host'])}, "
             + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + ". CPU only, random weights.",
             "",
             f"The machine was shared with other jobs (1-min load average {_f(load.get('min'))}–{_f(load.get('max'))}"
             f" on {r['host']['cpus']} CPUs during the run), so absolute times are pessimistic and noisy. "
             "Ratios between models of one group (ours vs keras.applications, unfused vs fused, MQA vs MHSA) "
             "were measured in interleaved rounds in the same process and are the medians of per-round "
             "ratios: those are the meaningful numbers. Latency = median ms per batch-1 call; throughput = "
             f"images/s at batch {big}."
             + (" **Quick run (few iterations): indicative only.**" if r["quick"] else ""), ""]
    parts = {"apps": lambda: _ours_vs_apps(r, th, big), "fusion": lambda: _fusion(r, th),
             "mqa": lambda: _mqa(r, th, big), "keras": lambda: _keras(r, models, th, bs, big),
             "tflite": lambda: _tflite(r, models, th), "torch": lambda: _torch(r, models, th, bs, big),
             "lut": _lut, "sweep": _sweep}
    for key in sections or SECTIONS:
        lines += parts[key]()
    lines += ["", "Wall time per part (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r.get("wall_s", {}).items()), ""]
    return "\n".join(lines)


def _ours_vs_apps(r, th, big):
    rows = [n for g in r["groups"] for n in g if n.startswith("MobileNetV3")]
    if not rows:
        return []
    out = ["## keras_mobile MobileNetV3 vs keras.applications.MobileNetV3 (ratio ours / keras.applications; target <= 1.05)",
           "", "| model | MMACs | " + " | ".join(f"Keras b1 t{t}" for t in th)
           + " | " + " | ".join(f"Keras b{big} t{t}" for t in th)
           + " | " + " | ".join(f"TFLite fp32 t{t}" for t in th) + " | " + " | ".join(f"TFLite int8 t{t}" for t in th)
           + " | fp32 MB ours / apps |", "|---|---:|" + "---:|" * (4 * len(th) + 1)]
    for n in rows:
        pair = f"{n} / {bench_models.KERAS_APPS}{n}"
        cells = [_f(_kratio(r, pair, t), "{:.3f}") for t in th] + [_f(_kratio(r, pair, t, big), "{:.3f}") for t in th]
        cells += [_f(_tratio(r, pair, q, t), "{:.3f}") for q in ("float32", "int8") for t in th]
        sizes = (_g(r, "tflite", "models", n, "float32", "size_mb"),
                 _g(r, "tflite", "models", bench_models.KERAS_APPS + n, "float32", "size_mb"))
        cells.append(f"{_f(sizes[0], '{:.2f}')} / {_f(sizes[1], '{:.2f}')}")
        out.append(f"| {n} | {_mmacs(r, n)} | " + " | ".join(cells) + " |")
    graphs = _g(r, "keras", f"t{th[0]}", "graphs") or {}
    if graphs:
        out += ["", "Layer census, where the two graphs differ (ours vs keras.applications):", ""]
        for pair, g in graphs.items():
            diff = [f"{k} {g['ours'].get(k, 0)} vs {g['apps'].get(k, 0)}"
                    for k in sorted(set(g["ours"]) | set(g["apps"])) if g["ours"].get(k, 0) != g["apps"].get(k, 0)]
            out.append(f"- {pair.split(' / ')[0]}: " + ("; ".join(diff) or "identical layer counts"))
    if r.get("notes", {}).get("mnv3"):
        out += ["", r["notes"]["mnv3"]]
    return out + [""]


def _fusion(r, th):
    rows = [n for g in r["groups"] for n in g if n.startswith("MobileOne") and not n.endswith("]")]
    if not rows:
        return []
    t1 = th[0]
    out = ["## MobileOne fused vs unfused (batch 1; speed-up = unfused / fused time, interleaved)", "",
           "| model | params M unfused / fused | MMACs unfused / fused | "
           + " | ".join(f"Keras ms t{t} unfused / fused | Keras speed-up t{t}" for t in th)
           + f" | TFLite fp32 ms t{t1} unfused / fused | " + " | ".join(f"TFLite fp32 speed-up t{t}" for t in th)
           + f" | TFLite int8 ms t{t1} unfused / fused | TFLite int8 speed-up t{t1} | TFLite ops unfused / fused |",
           "|---|---:|---:|" + "---:|---:|" * len(th) + "---:|" + "---:|" * len(th) + "---:|---:|---:|"]
    for n in rows:
        fz, pair = n + "[fused]", f"{n} / {n}[fused]"
        cells = [f"{_params(r, n)} / {_params(r, fz)}", f"{_mmacs(r, n)} / {_mmacs(r, fz)}"]
        for t in th:
            cells += [f"{_f(_kms(r, n, t))} / {_f(_kms(r, fz, t))}", _f(_kratio(r, pair, t), "{:.2f}x")]
        cells.append(f"{_f(_tms(r, n, 'float32', t1), '{:.2f}')} / {_f(_tms(r, fz, 'float32', t1), '{:.2f}')}")
        cells += [_f(_tratio(r, pair, "float32", t), "{:.2f}x") for t in th]
        cells += [f"{_f(_tms(r, n, 'int8', t1), '{:.2f}')} / {_f(_tms(r, fz, 'int8', t1), '{:.2f}')}",
                  _f(_tratio(r, pair, "int8", t1), "{:.2f}x")]
        ops = [_g(r, "tflite", "models", x, "float32", "ops") for x in (n, fz)]
        cells.append(f"{_f(ops[0], '{}')} / {_f(ops[1], '{}')}")
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    return out + [""]


def _mqa(r, th, big):
    mqa, mha = "MobileNetV4HybridM", "MobileNetV4HybridM[mha]"
    if mha not in [n for g in r["groups"] for n in g]:
        return []
    pair = f"{mqa} / {mha}"
    out = ["## Mobile MQA vs MHSA (MobileNetV4HybridM, same configuration; ratio = MQA / MHSA time)", "",
           "| attention | MMACs | params M | " + " | ".join(f"Keras b1 ms t{t}" for t in th)
           + f" | Keras b{big} img/s t{th[0]} | " + " | ".join(f"TFLite fp32 ms t{t}" for t in th)
           + f" | TFLite int8 ms t{th[0]} |", "|---|---:|---:|" + "---:|" * (2 * len(th) + 2)]
    for label, n in (("Mobile MQA", mqa), ("MHSA", mha)):
        out.append(f"| {label} | {_mmacs(r, n)} | {_params(r, n)} | "
                   + " | ".join(_f(_kms(r, n, t)) for t in th) + f" | {_f(_kms(r, n, th[0], big))} | "
                   + " | ".join(_f(_tms(r, n, 'float32', t), '{:.2f}') for t in th)
                   + f" | {_f(_tms(r, n, 'int8', th[0]), '{:.2f}')} |")
    out.append("| **MQA / MHSA** | | | " + " | ".join(_f(_kratio(r, pair, t), "{:.3f}") for t in th)
               + f" | {_f(_kratio(r, pair, th[0], big), '{:.3f}')} (time) | "
               + " | ".join(_f(_tratio(r, pair, "float32", t), "{:.3f}") for t in th)
               + f" | {_f(_tratio(r, pair, 'int8', th[0]), '{:.3f}')} |")
    return out + [""]


def _keras(r, models, th, bs, big):
    out = ["## Keras 3 (TensorFlow backend, tf.function)", "",
           "| model | input | MMACs | params M | " + " | ".join(
               f"b1 ms t{t}" + (f" | b{big} img/s t{t}" if big > 1 else "") for t in th) + " |",
           "|---|---|---:|---:|" + ("---:|" * (2 if big > 1 else 1)) * len(th)]
    for n in models:
        info = _info(r, n)
        cells = []
        for t in th:
            cells.append(_f(_kms(r, n, t)))
            if big > 1:
                cells.append(_f(_kms(r, n, t, big)))
        size = "x".join(map(str, (info.get("input") or [])[:2]))
        out.append(f"| {n} | {size} | {_mmacs(r, n)} | {_params(r, n)} | " + " | ".join(cells) + " |")
    return out + [""]


def _tflite(r, models, th):
    tf = r.get("tflite", {}).get("models", {})
    if not tf:
        return []
    out = ["## TFLite (LiteRT interpreter, XNNPack, batch 1; int8 = full-integer, float IO)", "",
           "Export = the batch-1 inference SavedModel (done once per model); the package's "
           "`keras_mobile.tflite.export` costs export + convert.", "",
           "| model | SavedModel export s | fp32 MB | fp32 convert s | " + " | ".join(f"fp32 ms t{t}" for t in th)
           + f" | int8 MB | int8 convert+calibrate s ({r.get('calib', '?')} samples) | "
           + " | ".join(f"int8 ms t{t}" for t in th) + " |",
           "|---|---:|---:|---:|" + "---:|" * len(th) + "---:|---:|" + "---:|" * len(th)]
    for n in models:
        if n not in tf:
            continue
        row = [n, _f(tf[n].get("export_s")) if "error" not in tf[n] else f"error: {tf[n]['error'][:60]}"]
        for q in ("float32", "int8"):
            e = tf[n].get(q, {})
            if "error" in e:
                row += [f"error: {e['error'][:60]}"] + ["-"] * (1 + len(th))
                continue
            row += [_f(e.get("size_mb"), "{:.2f}"), _f(e.get("convert_s"))]
            row += [_f(_g(e, f"t{t}", "ms"), "{:.2f}") for t in th]
        out.append("| " + " | ".join(row) + " |")
    return out + [""]


def _torch(r, models, th, bs, big):
    tm = r.get("torch", {}).get("models", {})
    if not tm:
        return [] if not r.get("torch_skipped") else [f"timm / PyTorch: skipped ({r['torch_skipped']}).", ""]
    out = ["## timm / PyTorch (eager, inference_mode) vs keras_mobile (ratio = ours / timm time, same threads)",
           "", "Separate processes measured at different times: these ratios carry the machine's load noise. "
           "torch ran with OMP_WAIT_POLICY=PASSIVE (with the default busy-wait, 2 threads were ~15x slower than 1 "
           "on this shared machine).", "",
           "| model | timm name | " + " | ".join(
               f"timm b1 ms t{t} | Keras / timm b1 t{t} | TFLite fp32 / timm b1 t{t}" for t in th)
           + "".join(f" | timm b{big} img/s t{t}" for t in th if big > 1) + " |",
           "|---|---|" + "---:|---:|---:|" * len(th) + ("---:|" * len(th) if big > 1 else "")]
    for n in models:
        if n not in tm:
            continue
        cells = []
        for t in th:
            tb1 = _g(tm, n, f"t{t}_b1", "ms")
            k, tl = _kms(r, n, t), _tms(r, n, "float32", t)
            cells += [_f(tb1), _f(k / tb1 if k and tb1 else None, "{:.2f}"), _f(tl / tb1 if tl and tb1 else None, "{:.2f}")]
        if big > 1:
            cells += [_f(_g(tm, n, f"t{t}_b{big}", "img_s")) for t in th]
        out.append(f"| {n} | {_g(r, 'torch', 'timm', n) or '-'} | " + " | ".join(cells) + " |")
    return out + [""]


def _lut():
    lut = _load(os.path.join(HERE, "results", "lut_eval.json"))
    if not lut:
        return []
    out = [f"## Latency lookup table vs measured (LiteRT fp32, batch 1, {lut.get('num_threads', 1)} thread; "
           "benchmarks/latency_table_eval.py)", "",
           "| model | LUT predicted ms | measured ms | error |", "|---|---:|---:|---:|"]
    for n, d in lut["models"].items():
        out.append(f"| {n} | {d['predicted_ms']:.2f} | {d['measured_ms']:.2f} | {d['error_pct']:+.1f}% |")
    out += ["", f"Spearman rank correlation {lut['spearman']:.3f}, mean abs % error {lut['mape_pct']:.1f}% "
            f"({lut.get('entries', '?')} distinct blocks, {len(lut['models'])} models; timing statistic "
            f"{lut.get('statistic', 'median')} of {lut.get('runs', '?')} invokes, whole models in alternating warm bursts)."]
    return out + [""]


def _sweep():
    sweep = _load(os.path.join(HERE, "results", "ridge_sweep.json"))
    if not sweep:
        return []
    out = ["## Roofline ridge-point sweep (benchmarks/roofline_sweep.py, ridge_sweep.png)", "",
           f"Predicted ms at {sweep['peak_macs'] / 1e12:g} TMAC/s peak, {sweep['dtype_bytes']}-byte values, "
           "bandwidth = peak / ridge.", "",
           "| model | MMACs | ridge 0.5 | ridge 5 | ridge 50 | ridge 500 |", "|---|---:|---:|---:|---:|---:|"]
    for n, d in sweep["models"].items():
        at = d["ms_at_ridge"]
        out.append(f"| {n} | {d['macs'] / 1e6:,.0f} | " + " | ".join(f"{at[k]:.3f}" for k in ("0.5", "5", "50", "500"))
                   + " |")
    return out + [""]

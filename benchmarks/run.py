"""keras_mobile benchmarks: one command, JSON + a markdown table.

    python benchmarks/run.py                 # everything, ~40 min on 2 busy cores
    python benchmarks/run.py --quick         # a few models, few iterations (~5 min)
    python benchmarks/run.py --models MobileOneS0 EfficientFormerL1 --skip-torch --threads 1

Measures on this machine (CPU), each part in its own subprocess (benchmarks/bench_workers.py):
  * keras: Keras 3 (TensorFlow backend) latency at batch 1 and throughput at batch 32, one
    process per thread count, for every package model, MobileOne S0-S4 unfused and fused
    (`[fused]`), MobileNetV4HybridM with MHSA (`[mha]`) and keras.applications.MobileNetV3
    Large/Small (also `[minimal]`) built in the same process;
  * tflite: float32 and full-integer int8 export (conversion and calibration time, file size)
    and LiteRT latency at batch 1 for every thread count;
  * torch: timm / PyTorch eager latency and throughput for the same architectures.
Models compared with each other (ours vs keras.applications, unfused vs fused, MQA vs MHSA) are
timed in interleaved rounds in one process; their ratio is the median of per-round ratios.
Writes results/latest.json and results/latest.md (--quick: results/quick.*). The LUT
evaluation (latency_table_eval.py) and ridge sweep (roofline_sweep.py) have their own scripts;
their committed JSONs are rendered into the markdown.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import write_result  # noqa: E402

import bench_models  # noqa: E402
import bench_render  # noqa: E402

# Iterations: batch 1 up to `runs` interleaved rounds (at least `min_runs`, fewer once a group
# exceeded `budget` seconds); the big batch likewise with the *_big settings.
# Calibration samples only shape the int8 ranges, which do not change latency: few are enough.
FULL = dict(runs=100, warmup=3, budget=6, min_runs=5, runs_big=3, warmup_big=1, budget_big=8, min_runs_big=1,
            calib=8)
QUICK = dict(runs=20, warmup=2, budget=2, min_runs=3, runs_big=2, warmup_big=1, budget_big=3, min_runs_big=1,
             calib=4)
PARTS = ("keras", "tflite", "torch")


def default_models(quick=False):
    return list(bench_models.QUICK if quick else bench_models.FAMILIES)


def quants_for(groups, quants, int8_unfused=False):
    """Per-model TFLite quantizations: int8 of a train-time MobileOne is skipped unless asked
    (one deploys fuse-then-quantize; its conversion is the slowest of all)."""
    out = {}
    for g in groups:
        for n in g:
            unfused = n.startswith("MobileOne") and not n.endswith("[fused]")
            out[n] = [q for q in quants if not (q == "int8" and unfused and not int8_unfused)]
    return out


def _versions():
    import importlib.metadata as md
    v = {"python": platform.python_version()}
    for dist in ("keras", "tensorflow", "ai-edge-litert", "torch", "timm"):
        try:
            v[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return v


def torch_available():
    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("timm") is not None


class LoadLog:
    """Samples the 1-minute load average while the parts run."""

    def __init__(self):
        self.samples = []

    def sample(self):
        self.samples.append(round(os.getloadavg()[0], 2))

    def summary(self):
        s = self.samples or [os.getloadavg()[0]]
        return {"min": min(s), "max": max(s), "mean": sum(s) / len(s), "samples": s}


def _sub(cfg, load, log_every=10, env=None):
    """Runs one worker; returns (results, wall seconds). Worker progress goes to our stderr."""
    fd, out = tempfile.mkstemp(suffix=".json", prefix="kmbench")
    os.close(fd)
    cfg_path = out + ".cfg"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", **(env or {})}
    t0 = time.time()
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "bench_workers.py"), cfg_path, out],
                         stdout=subprocess.DEVNULL, env=env)
    while p.poll() is None:
        load.sample()
        try:
            p.wait(timeout=log_every)
        except subprocess.TimeoutExpired:
            pass
    wall = time.time() - t0
    data = {}
    if os.path.getsize(out):
        with open(out) as f:
            data = json.load(f)
    if p.returncode != 0:
        print(f"  part {cfg['desc']} exited with {p.returncode}; keeping what it measured", file=sys.stderr)
        data["error"] = f"exit code {p.returncode}"
    for path in (out, cfg_path):
        os.remove(path)
    return data, wall


def run(models, quick=False, threads=(1, 2), batches=(1, 32), parts=PARTS, quants=("float32", "int8"),
        int8_unfused=False, settings=None, name=None, out_dir=os.path.join(HERE, "results"), command=None):
    """Runs the parts and writes `{out_dir}/{name}.json` and `.md`; returns the results dict."""
    t_start = time.time()
    s = dict(QUICK if quick else FULL, **(settings or {}))
    groups = bench_models.groups(models)
    threads, batches = list(threads), list(batches)
    from keras_mobile.analysis.hardware import describe_host   # here: the driver stays light until it runs
    r = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         "command": command or "python benchmarks/run.py", "quick": quick,
         "host": describe_host(),
         "versions": _versions(), "threads": threads, "batches": batches, "calib": s["calib"],
         "settings": s, "groups": groups, "keras": {}, "tflite": {}, "torch": {}, "wall_s": {}, "load": {}}
    load = LoadLog()
    load.sample()
    path = os.path.join(out_dir, (name or ("quick" if quick else "latest")))
    os.makedirs(out_dir, exist_ok=True)

    def save():
        r["load"] = load.summary()
        r["total_s"] = time.time() - t_start
        write_result(path, r, bench_render.render(r))

    for part in parts:
        base = dict(s, part=part, groups=groups)
        if part == "keras":
            for i, t in enumerate(threads):
                data, r["wall_s"][f"keras_t{t}"] = _sub(dict(base, threads=t, batches=batches, desc=f"keras t{t}",
                                                             profile=i == 0), load)
                r["keras"][f"t{t}"] = data
                save()
        elif part == "tflite":
            cfg = dict(base, threads=threads, quants=list(quants), desc="tflite",
                       quants_for=quants_for(groups, quants, int8_unfused))
            r["tflite"], r["wall_s"]["tflite"] = _sub(cfg, load)
        elif part == "torch":
            if not torch_available():
                r["torch_skipped"] = "torch/timm not installed"
                continue
            sizes = {n: d["input"][0] for t in r["keras"].values() for n, d in t.get("models", {}).items()}
            if not sizes:
                r["torch_skipped"] = "needs the keras part (input sizes)"
                continue
            # OpenMP's default busy-wait made 2 torch threads ~15x slower than 1 on this shared
            # machine (threads spin while their peer is descheduled); PASSIVE sleeps instead.
            r["torch"], r["wall_s"]["torch"] = _sub(dict(base, threads=threads, batches=batches, sizes=sizes,
                                                         desc="torch"), load, env={"OMP_WAIT_POLICY": "PASSIVE"})
        else:
            raise ValueError(f"unknown part {part!r}; choose from {PARTS}")
        save()
    if "torch" not in parts:
        r["torch_skipped"] = "--skip-torch"
    save()
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help="a few models, few iterations")
    p.add_argument("--models", nargs="+", default=None,
                   help="benchmark names (default: all); peers (keras.applications, [fused], [mha]) are added")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--skip-torch", "--no-torch", action="store_true", help="no timm / PyTorch part")
    p.add_argument("--runs", type=int, default=None, help="max batch-1 rounds per group (default 100; quick 20)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds per group after which batch-1 rounds stop (>= 5 rounds; default 6; quick 2)")
    p.add_argument("--calib", type=int, default=None, help="int8 calibration samples (default 8; quick 4)")
    p.add_argument("--int8-unfused", action="store_true", help="also int8-convert train-time MobileOne models")
    p.add_argument("--name", default=None, help="results file stem (default latest; quick: quick)")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--render", default=None, metavar="JSON", help="only re-render this results JSON to markdown")
    a = p.parse_args(argv)
    if a.render:
        with open(a.render) as f:
            md = bench_render.render(json.load(f))
        from keras_mobile.files import write_atomic
        write_atomic(os.path.splitext(a.render)[0] + ".md", md.encode())
        print(md)
        return 0
    if any(t < 1 for t in a.threads) or any(b < 1 for b in a.batches):
        p.error("--threads and --batches must be >= 1")
    models = a.models or default_models(a.quick)
    try:
        bench_models.groups(models)
    except ValueError as e:
        p.error(str(e))
    parts = [x for x in a.parts if not (x == "torch" and a.skip_torch)]
    settings = {k: v for k, v in (("runs", a.runs), ("calib", a.calib), ("budget", a.budget)) if v is not None}
    r = run(models, quick=a.quick, threads=a.threads, batches=a.batches, parts=parts, settings=settings,
            int8_unfused=a.int8_unfused,
            name=a.name, out_dir=a.out, command="python benchmarks/run.py " + " ".join(argv or sys.argv[1:]))
    print(bench_render.render(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

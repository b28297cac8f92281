"""Training speed with TensorFlow's oneDNN CPU kernels on and off (`TF_ENABLE_ONEDNN_OPTS`), and crashes.

    PYTHONPATH=. python benchmarks/onednn_training.py                        # MobileOneS0 + MobileNetV3Small
    PYTHONPATH=. python benchmarks/onednn_training.py --rounds 3 --models MobileNetV3Small

Every run is the recipe of scripts/mobileone_train_crash.py (32 px digits, SGD momentum 0.9, batch 32,
TensorFlow's default thread pools) in a fresh process: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import.
The first epoch (tracing, oneDNN primitive creation) is not timed; steps/s is over the later epochs. Rounds
interleave the arms (model x on/off, the order alternating between rounds); the off/on speed is the median of
per-round ratios. A run killed by a signal (abort, segfault) counts as a crash and gives no speed; a run that
exits with an error (a Python exception) stops the benchmark with its message: it is not a crash.
Writes results/onednn_training.json and .md after every run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _setup import host_line, write_result  # noqa: E402

MODELS = ("MobileOneS0", "MobileNetV3Small")
ARMS = ("on", "off")


def worker(model_name, epochs, size):
    """Trains one model as scripts/mobileone_train_crash.py does; prints one RESULT line."""
    import keras

    import keras_mobile
    from keras_mobile.commands.demo import load_digits_rgb

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    (x, y), _ = load_digits_rgb(size)
    keras.utils.set_random_seed(0)
    model = getattr(keras_mobile, model_name)(weights=None, input_shape=(size, size, 3), classes=10)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    times, batch = [], 32
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[EpochTimes()])
    steps = -(-len(x) // batch)
    print("RESULT " + json.dumps({"epoch_s": times, "steps_per_epoch": steps}), flush=True)


def one_run(model_name, arm, epochs, size):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1" if arm == "on" else "0", TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", model_name, "--epochs", str(epochs),
           "--size", str(size)]
    load = os.getloadavg()[0]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    run = {"model": model_name, "onednn": arm, "rc": p.returncode, "load1_before": load,
           "load1_after": os.getloadavg()[0]}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode == 0 and lines:
        r = json.loads(lines[-1][len("RESULT "):])
        timed = r["epoch_s"][1:]
        run.update(r, steps_per_s=r["steps_per_epoch"] * len(timed) / sum(timed))
    elif p.returncode > 0 or not lines:
        tail = "\n".join(p.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"{model_name} (oneDNN {arm}) failed with exit code {p.returncode}, not a crash:\n{tail}")
    else:
        run["stderr_tail"] = p.stderr.strip().splitlines()[-3:]
    return run


def summarize(runs, models):
    rows = {}
    for m in models:
        mine = [r for r in runs if r["model"] == m]
        arm = {a: [r for r in mine if r["onednn"] == a] for a in ARMS}
        speed = {a: [r["steps_per_s"] for r in arm[a] if "steps_per_s" in r] for a in ARMS}
        by_round = {}
        for r in mine:
            if "steps_per_s" in r:
                by_round.setdefault(r["round"], {})[r["onednn"]] = r["steps_per_s"]
        ratios = [v["off"] / v["on"] for v in by_round.values() if len(v) == 2]
        rows[m] = {"runs": {a: len(arm[a]) for a in ARMS},
                   "crashes": {a: sum(r["rc"] < 0 for r in arm[a]) for a in ARMS},
                   "median_steps_per_s": {a: statistics.median(speed[a]) if speed[a] else None for a in ARMS},
                   "off_over_on": statistics.median(ratios) if ratios else None, "rounds_compared": len(ratios),
                   "off_over_on_range": [min(ratios), max(ratios)] if ratios else None}
    return rows


def render(res):
    fmt = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    loads = [r[k] for r in res["runs"] for k in ("load1_before", "load1_after")]
    out = ["# Training with TensorFlow's oneDNN kernels on vs off (`TF_ENABLE_ONEDNN_OPTS`)", "",
           f"`{res['command']}`; {res['when']}; TensorFlow {res['tensorflow']}; {res['host']}; "
           f"load average (1 min) {min(loads):.1f}-{max(loads):.1f} over the runs.", "",
           f"Recipe of scripts/mobileone_train_crash.py: {res['size']} px digits, batch 32, SGD momentum, "
           f"{res['epochs']} epochs, the first not timed; default thread pools; one process per run, arms interleaved.",
           "", "| model | steps/s oneDNN on | steps/s off | off / on (median of rounds) | range over rounds | rounds "
           "| crashed on | crashed off |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m, s in res["summary"].items():
        med, runs, cr = s["median_steps_per_s"], s["runs"], s["crashes"]
        spread = s.get("off_over_on_range") or [None, None]
        out.append(f"| {m} | {fmt(med['on'])} | {fmt(med['off'])} | {fmt(s['off_over_on'], 3)} | "
                   f"{fmt(spread[0], 3)}-{fmt(spread[1], 3)} | {s['rounds_compared']} | {cr['on']}/{runs['on']} | "
                   f"{cr['off']}/{runs['off']} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="per run; the first is not timed (>= 2)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--out", default=os.path.join(HERE, "results", "onednn_training"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.epochs < 2:
        p.error("--epochs must be >= 2: the first epoch is not timed")
    if a.worker:
        return worker(a.worker, a.epochs, a.size)
    from keras_mobile.applications.registry import names
    unknown = [m for m in a.models if m not in names()]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(sorted(names()))}")
    import tensorflow as tf

    from keras_mobile.analysis.hardware import describe_host
    res = {"command": " ".join(["python benchmarks/onednn_training.py"] + (argv or sys.argv[1:])),
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "tensorflow": tf.__version__,
           "host": host_line(describe_host()), "epochs": a.epochs, "size": a.size, "runs": []}
    for rnd in range(a.rounds):
        for m in a.models:
            for arm in (ARMS if rnd % 2 == 0 else ARMS[::-1]):
                run = dict(one_run(m, arm, a.epochs, a.size), round=rnd)
                res["runs"].append(run)
                print(f"[{time.strftime('%H:%M:%S')}] round {rnd} {m} oneDNN {arm}: rc {run['rc']}, "
                      f"{fmt_speed(run)}, load {run['load1_after']:.1f}", flush=True)
                res["summary"] = summarize(res["runs"], a.models)
                write_result(a.out, res, render(res))
    print(render(res))


def fmt_speed(run):
    return f"{run['steps_per_s']:.2f} steps/s" if "steps_per_s" in run else "crashed"


if __name__ == "__main__":
    main()

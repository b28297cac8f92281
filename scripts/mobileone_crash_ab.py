"""Counts aborts of scripts/mobileone_train_crash.py under two copies of the package, runs interleaved
(A, B, A, B, ...), one at a time, each a fresh interpreter with PYTHONPATH set to its arm's copy.

    git -C /work/main archive 9d64bcc keras_mobile | tar -x -C /tmp/before/   # the package before a fix
    nice -n 10 python scripts/mobileone_crash_ab.py --arm before=/tmp/before --arm after=. --runs 10

Appends one JSON line per run to --out (arm, exit code, signal, the package file imported, what it said
when it died, 1-min load before and after, seconds) and keeps each crashed run's stderr beside it.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mobileone_train_crash.py")
NOISE = ("I0000", "W0000", "WARNING: All log messages", "To enable the following", "@ ", "*** Check failure")


def crash_message(stderr):
    """What the process said when it died: stderr before faulthandler's thread dump, TensorFlow's
    start-up log lines and stack frames left out ("corrupted double-linked list", "Fatal Python error: Aborted")."""
    lines = []
    for ln in map(str.strip, stderr.splitlines()):
        if ln.startswith(("Thread 0x", "Current thread")):
            break
        if ln and not ln.startswith(NOISE):
            lines.append(ln)
    return " | ".join(lines[-4:])


def one_run(name, path, out):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path), PYTHONFAULTHANDLER="1")
    t0, load0 = time.time(), os.getloadavg()[0]
    p = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True)
    origin = [ln for ln in p.stdout.splitlines() if ln.startswith("keras_mobile from ")]
    run = {"arm": name, "rc": p.returncode, "signal": signal.Signals(-p.returncode).name if p.returncode < 0 else None,
           "package": origin[0].split(" from ", 1)[1] if origin else None, "message": crash_message(p.stderr) if p.returncode else "",
           "load1_before": load0, "load1_after": os.getloadavg()[0], "seconds": round(time.time() - t0, 1)}
    if p.returncode:
        with open(f"{out}.{name}.{int(t0)}.stderr", "w") as f:
            f.write(p.stderr)
    with open(out, "a") as f:
        f.write(json.dumps(run) + "\n")
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arm", action="append", required=True, help="NAME=PYTHONPATH (give two or more)")
    p.add_argument("--runs", type=int, default=10, help="runs per arm")
    p.add_argument("--out", default="mobileone_crash_ab.jsonl")
    a = p.parse_args()
    arms = [s.split("=", 1) for s in a.arm]
    crashes = {name: 0 for name, _ in arms}
    for i in range(a.runs):
        for name, path in arms:
            r = one_run(name, path, a.out)
            crashes[name] += r["rc"] != 0
            print(f"[{time.strftime('%H:%M:%S')}] {i} {name}: rc {r['rc']} {r['signal'] or ''} {r['seconds']} s, "
                  f"load {r['load1_before']:.1f}-{r['load1_after']:.1f}, {r['package']} {r['message']}",
                  flush=True)
    print("crashes:", {k: f"{v}/{a.runs}" for k, v in crashes.items()})


if __name__ == "__main__":
    main()

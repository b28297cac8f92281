"""Counts aborts of scripts/mobileone_train_crash.py under two copies of the package, runs interleaved
(A, B, A, B, ...), one at a time, each a fresh interpreter with PYTHONPATH set to its arm's copy.

    git -C /work/main archive 9d64bcc keras_mobile | tar -x -C /tmp/before/   # the package before a fix
    nice -n 10 python scripts/mobileone_crash_ab.py --arm before=/tmp/before --arm after=. --runs 10

Appends one JSON line per run to --out (default benchmarks/results/mobileone_crash_ab.jsonl: arm, exit
code, signal, the package file imported, what it said when it died, 1-min load before and after, seconds),
keeps each failed run's stderr beside it and writes the summary to the same name with .md. Only a run
killed by a signal (abort, segfault) counts as a crash; one that exits with an error (a Python exception,
e.g. a package path without keras_mobile) is reported apart, with its stderr tail. `--summarize` rewrites
the .md from --out without running anything.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "mobileone_train_crash.py")
OUT = os.path.join(ROOT, "benchmarks", "results", "mobileone_crash_ab.jsonl")
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


def tally(runs):
    """Per arm, in order of first appearance: runs, crashes (rc < 0: killed by a signal) with their signal
    names, and the runs that exited with an error (rc > 0), which are not crashes."""
    arms = {}
    for r in runs:
        a = arms.setdefault(r["arm"], {"runs": 0, "crashes": 0, "signals": {}, "errors": []})
        a["runs"] += 1
        if r["rc"] < 0:
            a["crashes"] += 1
            name = r.get("signal") or f"signal {-r['rc']}"
            a["signals"][name] = a["signals"].get(name, 0) + 1
        elif r["rc"] > 0:
            a["errors"].append(r)
    return arms


def one_run(name, path, out):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path), PYTHONFAULTHANDLER="1")
    t0, load0 = time.time(), os.getloadavg()[0]
    p = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True)
    origin = [ln for ln in p.stdout.splitlines() if ln.startswith("keras_mobile from ")]
    run = {"arm": name, "rc": p.returncode, "signal": signal.Signals(-p.returncode).name if p.returncode < 0 else None,
           "package": origin[0].split(" from ", 1)[1] if origin else None, "message": crash_message(p.stderr) if p.returncode else "",
           "stderr_tail": p.stderr.strip().splitlines()[-5:] if p.returncode else [],
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
           "load1_before": load0, "load1_after": os.getloadavg()[0], "seconds": round(time.time() - t0, 1)}
    if p.returncode:
        with open(f"{out}.{name}.{int(t0)}.stderr", "w") as f:
            f.write(p.stderr)
    with open(out, "a") as f:
        f.write(json.dumps(run) + "\n")
    return run


def signal_counts(arm):
    """"4 SIGSEGV, 2 SIGABRT" for one arm of `tally`."""
    return ", ".join(f"{n} {s}" for s, n in sorted(arm["signals"].items(), key=lambda kv: -kv[1]))


def summary_lines(runs):
    """Counts per arm with signal names, then every error run with its stderr tail."""
    lines = []
    for name, a in tally(runs).items():
        signals = signal_counts(a)
        lines.append(f"{name}: {a['crashes']}/{a['runs']} crashed ({signals or 'none'}), {len(a['errors'])} exited with an error")
    for r in runs:
        if r["rc"] > 0:
            lines.append(f"error (not a crash), {r['arm']} rc {r['rc']}: " + " | ".join(r.get("stderr_tail", [])))
    return lines


def markdown(runs):
    """The summary table: per arm the package imported, crashes with signals, errors, seconds and load ranges."""
    usage = [ln.strip() for ln in __doc__.splitlines() if ln.startswith("    ")]
    rows = ["# MobileOneS0 training crashes, package A/B (scripts/mobileone_crash_ab.py)", "",
            "Runs of scripts/mobileone_train_crash.py, arms interleaved, one fresh process each. A crash is a run "
            "killed by a signal; a run exiting with an error is counted apart. Per-run log: mobileone_crash_ab.jsonl.", "",
            "```", *usage, "```", "",
            "| arm | package | runs | crashes (signals) | errors | seconds | 1-min load |", "|---|---|---|---|---|---|---|"]
    for name, a in tally(runs).items():
        mine = [r for r in runs if r["arm"] == name]
        packages = sorted({str(r.get("package")) for r in mine})
        loads = [x for r in mine for x in (r["load1_before"], r["load1_after"])]
        secs = [r["seconds"] for r in mine]
        signals = signal_counts(a)
        rows.append(f"| {name} | {', '.join(packages)} | {a['runs']} | {a['crashes']}{f' ({signals})' if signals else ''} "
                    f"| {len(a['errors'])} | {min(secs):.0f}-{max(secs):.0f} | {min(loads):.1f}-{max(loads):.1f} |")
    errors = [ln for ln in summary_lines(runs) if ln.startswith("error")]
    return "\n".join(rows + ([""] + [f"- {e}" for e in errors] if errors else [])) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arm", action="append", help="NAME=PYTHONPATH (give two or more)")
    p.add_argument("--runs", type=int, default=10, help="runs per arm")
    p.add_argument("--out", default=OUT, help="per-run JSON lines; the summary goes beside it as .md")
    p.add_argument("--summarize", action="store_true", help="only rewrite the .md from --out")
    a = p.parse_args(argv)
    if not a.summarize:
        if not a.arm or any("=" not in s for s in a.arm):
            p.error("give each arm as --arm NAME=PYTHONPATH")
        for i in range(a.runs):
            for name, path in (s.split("=", 1) for s in a.arm):
                r = one_run(name, path, a.out)
                print(f"[{time.strftime('%H:%M:%S')}] {i} {name}: rc {r['rc']} {r['signal'] or ''} {r['seconds']} s, "
                      f"load {r['load1_before']:.1f}-{r['load1_after']:.1f}, {r['package']} {r['message']}",
                      flush=True)
    with open(a.out) as f:
        runs = [json.loads(ln) for ln in f if ln.strip()]
    print("\n".join(summary_lines(runs)))
    from keras_mobile.files import write_atomic   # imports TensorFlow: only now, after the runs

    write_atomic(os.path.splitext(a.out)[0] + ".md", markdown(runs).encode())


if __name__ == "__main__":
    main()

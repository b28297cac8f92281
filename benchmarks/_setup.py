"""What benchmark scripts share: TensorFlow's thread pools fixed before it runs an op (TensorFlow
sizes its pools at the first op and ignores later settings, so a script calls `tensorflow_threads`
at import time, one process per thread count when it compares several), the record of a run
(`Run`) and writing results."""
import os
import sys
import time


def host_line(r):
    """One line naming the machine a result was measured on (keys of analysis.hardware.describe_host):
    int8/float32 ratios depend on whether the CPU has int8 dot-product instructions."""
    dot = r.get("int8_dot")
    dot = "not recorded" if dot is None else ", ".join(dot) or "none"
    return f"{r.get('processor', r.get('machine'))} ({r.get('machine', '?')}), {r.get('cpus')} CPUs, int8 dot-product: {dot}"


def tensorflow_threads(intra=1, inter=1):
    """Sets TensorFlow's intra-/inter-op thread counts; returns the `tensorflow` module."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    return tf


def commit():
    """The checkout's short commit, "+uncommitted" appended when tracked code of the package or
    the benchmarks (not their results) differs from it (the code that ran is then not that commit's); None outside git."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "keras_mobile", "benchmarks/*.py")
    return head + "+uncommitted" * bool(dirty)


class Run:
    """A benchmark run, started when made: `record()` is what its result keeps about the run (the
    1-min load at the start and the end, the wall time, the command that repeats it, the git commit
    it ran at) and `run_line` says it in the markdown."""

    def __init__(self, script, argv=None):
        self.t0, self.load0 = time.time(), os.getloadavg()[0]
        self.command = f"PYTHONPATH=. python benchmarks/{script} " + " ".join(argv or sys.argv[1:])
        self.commit = commit()

    def record(self):
        """Also `commit_end` when the checkout's commit (or its uncommitted code) changed during the
        run (a long run in a tree that moved: the code that ran is then neither commit alone)."""
        rec = {"load1_start": self.load0, "load1_end": os.getloadavg()[0], "wall_s": time.time() - self.t0,
               "command": self.command, "commit": self.commit}
        now = commit()
        if now != self.commit:
            rec["commit_end"] = now
        return rec


def run_line(res):
    """The markdown sentence on a result's `Run.record()` keys (results from before the commit was
    recorded render as they did)."""
    commit = f" (commit {res['commit']})" if res.get("commit") else ""
    if res.get("commit_end"):
        commit = (f" (commit {res['commit']} at the start, {res['commit_end']} at the end: the code changed "
                  f"during the run)")
    return (f"Load (1 min) {res['load1_start']:.1f} at the start, {res['load1_end']:.1f} at the end; "
            f"wall {res['wall_s']:.0f} s. Command: `{res['command'].strip()}`{commit}.")


def write_result(stem, res, text):
    """`res` as stem.json and `text` (its rendered markdown) as stem.md, each written atomically
    (a benchmark rewrites them after every model: a crash keeps what was measured)."""
    import json

    from keras_mobile.files import write_atomic
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    write_atomic(stem + ".json", json.dumps(res, indent=1, default=float).encode())
    write_atomic(stem + ".md", text.encode())


def save_results(out_dir, name, res, text):
    """`write_result` at out_dir/name, then prints the table."""
    write_result(os.path.join(out_dir, name), res, text)
    print(text)

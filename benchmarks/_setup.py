"""The start every benchmark script shares: TensorFlow's thread pools fixed before it runs an op.

TensorFlow sizes its pools at the first op and ignores later settings, so a script calls this
at import time (one process per thread count when it compares several)."""


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


def write_result(stem, res, text):
    """`res` as stem.json and `text` (its rendered markdown) as stem.md, each written atomically
    (a benchmark rewrites them after every model: a crash keeps what was measured)."""
    import json
    import os

    from keras_mobile.files import write_atomic
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    write_atomic(stem + ".json", json.dumps(res, indent=1, default=float).encode())
    write_atomic(stem + ".md", text.encode())


def save_results(out_dir, name, res, text):
    """`write_result` at out_dir/name, then prints the table."""
    import os
    write_result(os.path.join(out_dir, name), res, text)
    print(text)

"""Timing a Keras model (or a block of one) in the LiteRT interpreter for the latency table."""
import os
import statistics
import time

import numpy as np


class _quiet:
    """Silence the converter's stdout/stderr chatter (it prints from C++ and Python)."""

    def __enter__(self):
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        self.null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.null, 1)
        os.dup2(self.null, 2)

    def __exit__(self, *exc):
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved + [self.null]:
            os.close(fd)

QUANTIZATIONS = ("float32", "int8")


def to_tflite(model, quantization="float32", quiet=True, io_dtype="float32"):
    """Batch-1 .tflite bytes of `model` through the package converter (`tflite.export.converter_for`).

    int8 is calibrated on random normal inputs (timing does not depend on the scales).
    io_dtype: the file's input and output type, "float32" (a deployed model) or "int8" (int8
    quantization only: a block slice, `block_tflite`)."""
    from keras_mobile.tflite.export import converter_for
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if io_dtype not in ("float32", "int8") or (io_dtype == "int8" and quantization != "int8"):
        raise ValueError(f"io_dtype must be 'float32', or 'int8' with int8 quantization; got {io_dtype!r} "
                         f"with {quantization!r}")
    rep = None
    if quantization == "int8":
        shape = tuple(model.inputs[0].shape[1:])
        rep = np.random.default_rng(0).standard_normal((8,) + shape).astype("float32")
    conv = converter_for(model, quantization, rep, io_dtype, io_dtype, num_calibration_steps=8,
                         progress=False)
    if not quiet:
        return conv.convert()
    with _quiet():
        return conv.convert()


def slice_io(quantization):
    """The input/output type of a block slice in the latency table: the type the whole file passes
    between its blocks. An int8 file runs int8 tensors from its input QUANTIZE to its output
    DEQUANTIZE, so an int8 slice has int8 IO; with float IO every slice added a QUANTIZE and a
    DEQUANTIZE the model does not run (MobileOneS0 int8: its 44 slices summed to 1.14x the whole
    file with float IO, 1.00x with int8 IO; a helper's measurement, the float-IO arm not stored)."""
    return "int8" if quantization == "int8" else "float32"


def block_tflite(model, quantization="float32"):
    """.tflite bytes of a block slice (`Block.to_model()`) for the latency table: `to_tflite` with
    the slice's IO type (`slice_io`)."""
    return to_tflite(model, quantization, io_dtype=slice_io(quantization))


def invoke_clock(num_threads):
    """The clock that times one LiteRT invoke at `num_threads`.

    One thread: the calling thread's CPU time. LiteRT then runs the whole invoke on the calling
    thread, so its CPU time is the invoke's latency minus the time the OS gave the core to other
    processes. On this shared 2-core machine at load 3-7, MobileNetV3Large's 4 ms whole-model invoke
    took 16.1 ms median in wall time for 4.1 ms of CPU time, while its 0.1 ms blocks were rarely
    preempted: in wall time the whole model looked 4.3x its blocks' sum, in CPU time 1.10x
    (benchmarks/results/latency_clock_loaded.md; at load 1.3-2.2 the clocks agree within 1-8 %,
    latency_clock.md). CPU time estimates the latency of an unloaded machine. More threads: wall time (worker
    threads' CPU time is not the caller's)."""
    return time.thread_time if num_threads == 1 else time.perf_counter


def invoke_times(invoke, num_threads, runs=20, warmup=3, seconds=None, clock=None):
    """Seconds of each of `runs` calls of `invoke` (after `warmup` calls), by `clock` (default
    `invoke_clock(num_threads)`); stops early after `seconds` of wall time (at least 3 runs)."""
    return round_robin_times([invoke], num_threads, runs, warmup, seconds, clock)[0]


def round_robin_times(invokes, num_threads, runs=20, warmup=3, seconds=None, clock=None, before=None,
                      min_runs=3):
    """Seconds of each call of each of `invokes`, called in turn: `runs` rounds of invokes[0](),
    invokes[1](), ..., each call timed alone (after `warmup` untimed rounds), by `clock` (default
    `invoke_clock(num_threads)`); stops early after `seconds` of wall time (at least `min_runs`
    rounds). before: one callable per invoke (or None), run untimed right before it. Returns one
    list of times per invoke. The one timing loop: benchmarks' interleaved rounds call it too.

    Invoked in turn, each of a model's block slices runs after the others evicted its weights
    and buffers from cache, as inside the whole model; timed back to back alone it keeps them
    resident (benchmarks/latency_block_cuts.py, benchmarks/search_latency_bias.py)."""
    clock = clock or invoke_clock(num_threads)
    before = before or [None] * len(invokes)
    if len(before) != len(invokes):
        raise ValueError(f"before needs one entry per invoke: {len(before)} for {len(invokes)} invokes")
    for _ in range(warmup):
        for invoke in invokes:
            invoke()
    times = [[] for _ in invokes]
    t_end = time.perf_counter() + seconds if seconds is not None else None
    for _ in range(runs):
        for invoke, prepare, ts in zip(invokes, before, times):
            if prepare is not None:
                prepare()
            t0 = clock()
            invoke()
            ts.append(clock() - t0)
        if t_end is not None and time.perf_counter() > t_end and len(times[0]) >= min_runs:
            break
    return times


def open_for_timing(content, num_threads=1):
    """A LiteRT interpreter of a .tflite (bytes or path), its inputs filled with random values."""
    from keras_mobile.tflite.inspect import make_interpreter, random_inputs
    return random_inputs(make_interpreter(content, num_threads=num_threads))


def time_tflite(content, num_threads=1, runs=20, warmup=3, seconds=None):
    """Median seconds per invoke of a .tflite (bytes or path) in the LiteRT interpreter
    (CPU time of the invoke at one thread, wall time at more: `invoke_clock`)."""
    it = open_for_timing(content, num_threads)
    return statistics.median(invoke_times(it.invoke, num_threads, runs, warmup, seconds))


def rewrite_inputs(it):
    """A callable that writes the interpreter's current input values again (untimed, before an
    invoke in turn): the block before it in the model has just written its input, so the input
    is in cache when the model runs it."""
    inputs = [(d["index"], it.get_tensor(d["index"])) for d in it.get_input_details()]

    def write():
        for index, value in inputs:
            it.set_tensor(index, value)
    return write


def times_in_turn(interpreters, num_threads=1, runs=20, warmup=3):
    """Seconds of each invoke of each interpreter (a model's block slices, in model order), invoked
    in turn (`round_robin_times`), each input rewritten right before its invoke (`rewrite_inputs`)."""
    return round_robin_times([it.invoke for it in interpreters], num_threads, runs, warmup,
                             before=[rewrite_inputs(it) for it in interpreters])


def _overhead(num_threads, quantization="float32"):
    import keras
    x = keras.Input(batch_shape=(1, 4))
    m = keras.Model(x, keras.layers.Dense(4)(x))   # the per-invoke cost of a slice, as blocks are cut
    return time_tflite(block_tflite(m, quantization), num_threads, runs=200, warmup=20)


def measure_model_latency(model, num_threads=1, runs=20, quantization="float32"):
    """Whole-model LiteRT latency (seconds, median) of the float32 or int8 file: at one thread the
    invoke's CPU time (`invoke_clock`: what an unloaded machine would show), else wall time."""
    return time_tflite(to_tflite(model, quantization), num_threads, runs=runs)

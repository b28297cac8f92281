"""Hardware presets for the roofline model: peak MAC/s and memory bandwidth (bytes/s).

Presets are order-of-magnitude classes, not datasheets: their point is the ridge
(peak MACs / bandwidth, in MACs per byte) at which a layer stops being memory-bound, the axis
the MobileNetV4 paper sweeps. `measure_host()` measures this machine.
"""
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hardware:
    name: str
    peak_macs: float      # MAC/s
    bandwidth: float      # bytes/s
    dtype_bytes: int = 4

    @property
    def ridge(self):
        return self.peak_macs / self.bandwidth


PRESETS = {
    "cpu": Hardware("mobile CPU (big core class, fp32)", 50e9, 15e9, 4),
    "gpu": Hardware("mobile GPU (fp16)", 500e9, 30e9, 2),
    "dsp": Hardware("mobile DSP (int8)", 1e12, 20e9, 1),
    "edgetpu": Hardware("Coral EdgeTPU (int8, 8 MB on-chip)", 2e12, 8e9, 1),
}


def measure_host(seconds=0.5, threads=None):
    """This machine's peak fp32 MAC/s (matmul) and copy bandwidth (large array copy)."""
    n = 512
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    macs = reps * n ** 3 / (time.perf_counter() - t0)
    src = np.ones(32 * 2 ** 20 // 4, np.float32)   # 32 MiB, past the caches
    dst = np.empty_like(src)
    np.copyto(dst, src)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.copyto(dst, src)
        reps += 1
    bw = reps * 2 * src.nbytes / (time.perf_counter() - t0)   # read + write
    return Hardware("this host (measured, fp32)", macs, bw, 4)


# CPU features that give int8 a dot-product instruction (x86 VNNI/AMX, ARM dotprod/i8mm): with them,
# int8 convolutions run up to ~3x faster than float32 on the same core; without, int8 only saves memory.
INT8_DOT_FLAGS = ("avx_vnni", "avx512_vnni", "amx_int8", "asimddp", "i8mm")


def describe_host():
    """What a latency number depends on: architecture, CPU model, core count and the int8
    dot-product features (`int8_dot`, empty when int8 has no arithmetic advantage here)."""
    import os
    import platform
    names, flags = {}, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "CPU part"):
                    names.setdefault(key, value.strip())
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:   # not Linux: the platform module's name only
        pass
    # x86 names the CPU per core ("model name"); ARM boards name the SoC ("Model") once, after
    # the cores' hex part numbers ("CPU part"), the last resort
    model = next((names[k] for k in ("model name", "Model", "CPU part") if k in names), "")
    return {"machine": platform.machine(), "processor": model or platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "int8_dot": [f for f in INT8_DOT_FLAGS if f in flags]}

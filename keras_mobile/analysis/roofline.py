"""Roofline latency model: a layer costs max(MACs / PeakMACs, bytes / bandwidth).

`roofline(model, hardware)` predicts per-layer time and which roof binds; `ridge_sweep` runs
the MobileNetV4 paper's experiment (ridge point 0..500 MACs/byte at a fixed peak) over models
and can draw it.
"""
from dataclasses import dataclass

import numpy as np

from keras_mobile.analysis.hardware import PRESETS, Hardware
from keras_mobile.analysis.profile import Profile, profile


@dataclass
class LayerTime:
    name: str
    seconds: float
    bound: str        # "compute" or "memory"
    macs: int
    bytes: int


@dataclass
class Roofline:
    model: str
    hardware: Hardware
    layers: list

    @property
    def seconds(self):
        return sum(t.seconds for t in self.layers)

    def fraction_memory_bound(self):
        total = self.seconds
        return sum(t.seconds for t in self.layers if t.bound == "memory") / total if total else 0.0

    def __str__(self):
        return (f"{self.model} on {self.hardware.name}: {self.seconds * 1e3:.3f} ms predicted, "
                f"{100 * self.fraction_memory_bound():.0f}% of it memory-bound "
                f"(ridge {self.hardware.ridge:.1f} MACs/byte)")


def _profile(model_or_profile, dtype_bytes):
    return model_or_profile if isinstance(model_or_profile, Profile) else profile(model_or_profile, dtype_bytes)


def roofline(model_or_profile, hardware="cpu", fused=True):
    """Per-layer roofline times. fused=True (default) assumes a mobile compiler folds BN,
    activations, padding, reshapes and LayerScale into the neighbouring conv/dense (as TFLite
    does), so those layers cost no separate memory pass; fused=False charges every layer."""
    hw = PRESETS[hardware] if isinstance(hardware, str) else hardware
    prof = _profile(model_or_profile, hw.dtype_bytes)
    scale = hw.dtype_bytes / _bytes_per_value(prof)
    layers = []
    for r in prof.rows:
        if fused and getattr(r, "fusable", False):
            continue
        nbytes = int(r.bytes * scale)
        t_compute, t_memory = r.macs / hw.peak_macs, nbytes / hw.bandwidth
        if r.macs == 0 and nbytes == 0:
            continue
        layers.append(LayerTime(r.name, max(t_compute, t_memory),
                                "compute" if t_compute >= t_memory else "memory", r.macs, nbytes))
    return Roofline(prof.model, hw, layers)


def _bytes_per_value(prof):
    for r in prof.rows:   # profiles carry bytes at one dtype size; recover it from a weighted layer
        if r.params:
            return r.weight_bytes // r.params
    return 4


def ridge_sweep(models, ridges=None, peak_macs=1e12, dtype_bytes=1, fused=True):
    """{model name: [predicted seconds per ridge]} at a fixed peak, bandwidth = peak / ridge."""
    ridges = np.asarray(ridges if ridges is not None else np.linspace(1, 500, 100), dtype=float)
    out = {}
    for m in models:
        prof = _profile(m, dtype_bytes)
        out[prof.model] = [roofline(prof, Hardware(f"ridge {r:g}", peak_macs, peak_macs / r, dtype_bytes),
                                    fused=fused).seconds
                           for r in ridges]
    return ridges, out


def plot_ridge_sweep(ridges, results, path, title="Roofline latency vs ridge point"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 5.5))
    items = sorted(results.items(), key=lambda kv: -kv[1][-1])   # legend top-down = curves top-down
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(items), 2)))
    styles = ["-", "--", "-.", ":"]
    for i, (name, secs) in enumerate(items):
        ax.plot(ridges, np.asarray(secs) * 1e3, label=name, color=colors[i], linestyle=styles[i % 4], lw=1.8)
    ax.set_xlabel("ridge point (MACs / byte): low = compute-limited chip (CPU), high = accelerator")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    from keras_mobile.files import save_atomic
    save_atomic(path, lambda p: fig.savefig(p, dpi=120))
    plt.close(fig)
    return path

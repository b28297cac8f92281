"""Ridge-point sweep (MobileNetV4 paper, Fig. 3 style) over every package model.

    python benchmarks/roofline_sweep.py [--out benchmarks/results] [--dtype-bytes 1]

Predicted latency = sum over layers of max(MACs / PeakMACs, bytes / bandwidth) at a fixed peak,
with bandwidth = peak / ridge for ridge 0..500 MACs/byte. Writes ridge_sweep.png and .json.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--dtype-bytes", type=int, default=1)
    p.add_argument("--peak", type=float, default=1e12)
    p.add_argument("--models", nargs="*", default=None)
    a = p.parse_args(argv)
    import numpy as np
    from tqdm.auto import tqdm

    from keras_mobile.analysis import plot_ridge_sweep, profile, ridge_sweep
    from keras_mobile.applications.registry import get_model, names
    profs = []
    for n in tqdm(a.models or names(), desc="profiling", unit="model"):
        profs.append(profile(get_model(n)(weights=None), dtype_bytes=a.dtype_bytes))
    ridges = np.concatenate([[0.5], np.arange(5, 501, 5)])
    ridges, res = ridge_sweep(profs, ridges=ridges, peak_macs=a.peak, dtype_bytes=a.dtype_bytes)
    os.makedirs(a.out, exist_ok=True)
    png = plot_ridge_sweep(ridges, res, os.path.join(a.out, "ridge_sweep.png"),
                           title=f"Roofline latency vs ridge point ({a.peak / 1e12:g} TMAC/s peak, "
                                 f"{a.dtype_bytes}-byte values)")
    summary = {name: {"macs": pr.macs, "ms_at_ridge": {str(int(r)) if r >= 1 else str(r): s * 1e3
                                                       for r, s in zip(ridges, res[name])
                                                       if r in (0.5, 5, 50, 100, 250, 500)}}
               for name, pr in zip(res, profs)}
    with open(os.path.join(a.out, "ridge_sweep.json"), "w") as f:
        json.dump({"peak_macs": a.peak, "dtype_bytes": a.dtype_bytes, "models": summary}, f, indent=1)
    print("| model | MMACs | " + " | ".join(f"ms @ridge {k}" for k in ("0.5", "5", "50", "500")) + " |")
    print("|---|---:|" + "---:|" * 4)
    for name, d in summary.items():
        print(f"| {name} | {d['macs'] / 1e6:,.0f} | " + " | ".join(f"{d['ms_at_ridge'][k]:.3f}" for k in
                                                                  ("0.5", "5", "50", "500")) + " |")
    print("wrote", png)


if __name__ == "__main__":
    main()

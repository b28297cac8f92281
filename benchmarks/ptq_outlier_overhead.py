"""Export-time cost of dropping calibration outliers (a float conversion + one float LiteRT pass per
calibration sample with every tensor kept), timed interleaved against drop_calibration_outliers=False.

    python benchmarks/ptq_outlier_overhead.py --rounds 2

Random-weight MobileNetV3Small at 224 px, 100 calibration samples (export's default count).
Writes results/ptq_outlier_overhead.json with per-round ratios and their median.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import tensorflow_threads  # noqa: E402

tensorflow_threads(1)


def main(argv=None):
    import keras_mobile
    from keras_mobile.tflite import export
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--samples", type=int, default=100)
    args = p.parse_args(argv)
    model = keras_mobile.MobileNetV3Small(weights=None, input_shape=(args.size, args.size, 3))
    x = np.random.default_rng(0).uniform(0, 255, (args.samples, args.size, args.size, 3)).astype("float32")
    r = {"command": " ".join(["ptq_outlier_overhead.py"] + (argv or sys.argv[1:])), "load_before": os.getloadavg(),
         "rounds": []}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.rounds):
            t = {}
            for drop in (False, True):
                t0 = time.perf_counter()
                export(model, os.path.join(d, "m.tflite"), "int8", representative_data=x,
                       num_calibration_steps=args.samples, progress=False, drop_calibration_outliers=drop)
                t[str(drop)] = time.perf_counter() - t0
            t["ratio"] = t["True"] / t["False"]
            r["rounds"].append(t)
            print(t, flush=True)
    r["median_ratio"] = float(np.median([t["ratio"] for t in r["rounds"]]))
    r["load_after"] = os.getloadavg()
    with open(os.path.join(HERE, "results", "ptq_outlier_overhead.json"), "w") as f:
        json.dump(r, f, indent=1)
    print(r["median_ratio"])


if __name__ == "__main__":
    main()

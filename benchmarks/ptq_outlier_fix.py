"""Default int8 export with and without dropping calibration outliers, on saved trained models.

    python benchmarks/ptq_outlier_fix.py --models /tmp/int8w/keep2/MobileNetV3Small_seed{3,0}.keras

Each model file must end in _seed<N>.keras: its data are hard_digits(20000, 10000, 48, seed=N) as
in benchmarks/ptq_seeds.py (calibration: the first 300 training images; evaluation: LiteRT top-1
on the 10,000 unseen images). Writes results/ptq_outlier_fix.json.
"""
import argparse
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _setup import tensorflow_threads  # noqa: E402

tensorflow_threads(1)
from ptq_diagnose import accuracy  # noqa: E402


def main(argv=None):
    import keras

    from keras_mobile.data.digits import hard_digits
    from keras_mobile.tflite import export, representative
    from keras_mobile.tflite.edgetpu_lowering import xnnpack_int8_friendly
    from keras_mobile.tflite.export import _float_bytes
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--work", default="/tmp/ptqw")
    args = p.parse_args(argv)
    out = os.path.join(HERE, "results", "ptq_outlier_fix.json")
    r = {"command": " ".join(["ptq_outlier_fix.py"] + (argv or sys.argv[1:])), "load_before": os.getloadavg(), "models": []}
    for f in args.models:
        seed = int(re.search(r"_seed(\d+)\.keras$", f).group(1))
        (x, y), (xt, yt) = hard_digits(20000, 10000, 48, seed=seed)
        model = keras.saving.load_model(f, compile=False)
        calib = list(representative.samples(x[:300], x.shape[1:], 300))
        dropped = representative.outlier_samples(_float_bytes(xnnpack_int8_friendly(model)[0]), calib)
        row = {"model": os.path.basename(f), "seed": seed, "dropped_calibration_samples": dropped,
               "accuracy": {"float_keras": float((np.argmax(model.predict(xt, batch_size=256, verbose=0), -1) == yt).mean())}}
        for label, drop in (("int8_minmax_all_samples", False), ("int8_drop_outliers", True)):
            path = os.path.join(args.work, f"fix_{seed}_{label}.tflite")
            export(model, path, "int8", representative_data=x[:300], num_calibration_steps=300, progress=False,
                   drop_calibration_outliers=drop)
            row["accuracy"][label] = accuracy(path, xt, yt)
        print(json.dumps(row), flush=True)
        r["models"].append(row)
        r["load_after"] = os.getloadavg()
        with open(out, "w") as fh:
            json.dump(r, fh, indent=1)


if __name__ == "__main__":
    main()

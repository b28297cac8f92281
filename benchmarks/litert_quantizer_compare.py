"""LiteRT Quantizer (ai-edge-quantizer, recipe static_wi8_ai8) vs keras_mobile's default int8 export
on one trained model: top-1 agreement with Keras, accuracy, XNNPACK partitions, size, latency.

    python benchmarks/ptq_seeds.py --seeds 0 --keep /tmp/km       # trains and saves the model
    pip install ai-edge-quantizer==0.10.0                          # not a keras_mobile dependency
    python benchmarks/litert_quantizer_compare.py /tmp/km/MobileNetV3Small_seed0.keras

Both quantize with 300 training images of hard_digits (48 px, seed 0); scored on 3,000 test images.
The quantizer starts from `export(model, "float32")` (it quantizes a float .tflite). Latency: the
fp32, default-int8 and quantizer files timed interleaved at 1 thread (medians of per-round ratios).
Prints one JSON line; results/litert_quantizer_compare.md records a run.
"""
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_workers  # noqa: E402


def main(model_file, rounds=100):
    import keras
    from ai_edge_quantizer import quantizer, recipe

    from keras_mobile.data.digits import hard_digits
    from keras_mobile.tflite import export, inspect, run_tflite
    from keras_mobile.tflite.inspect import make_interpreter
    (x, _), (xt, yt) = hard_digits(20000, 10000, 48, seed=0)
    xt, yt = np.round(xt[:3000]), yt[:3000]
    model = keras.models.load_model(model_file)
    keras_top1 = model.predict(xt, verbose=0).argmax(-1)
    out = {"model": os.path.basename(model_file), "keras_accuracy": float((keras_top1 == yt).mean())}
    with tempfile.TemporaryDirectory() as d:
        paths = {k: os.path.join(d, f"{k}.tflite") for k in ("fp32", "default", "litert_quantizer")}
        export(model, paths["fp32"], progress=False)
        export(model, paths["default"], "int8", representative_data=x[:300], num_calibration_steps=300, progress=False)
        qt = quantizer.Quantizer(paths["fp32"], recipe.static_wi8_ai8())
        signature = make_interpreter(paths["fp32"], delegates=False).get_signature_list()
        key = next(iter(signature))
        name = signature[key]["inputs"][0]
        result = qt.quantize(qt.calibrate({key: [{name: x[i:i + 1]} for i in range(300)]}))
        with open(paths["litert_quantizer"], "wb") as f:
            f.write(result.quantized_model)
        for k in ("default", "litert_quantizer"):
            report = inspect(paths[k])
            top1 = run_tflite(paths[k], xt).argmax(-1)
            out[k] = {"agreement_with_keras": float((top1 == keras_top1).mean()), "accuracy": float((top1 == yt).mean()),
                      "partitions": report.delegate_partitions, "undelegated": sorted({op for _, op in report.undelegated_ops}),
                      "kib": round(report.file_bytes / 1024), "input_dtype": report.inputs[0].dtype}
        fns = {k: bench_workers._interpreter(open(p, "rb").read(), 1).invoke for k, p in paths.items()}
        out["load1"] = os.getloadavg()[0]
        times = bench_workers.interleaved(fns, runs=rounds, warmup=5, budget=float("inf"), min_runs=rounds)
    out["ms_t1"] = {k: bench_workers.summary(v, 1)["ms"] for k, v in times.items()}
    out["default_over_fp32"] = bench_workers.ratio(times["default"], times["fp32"])
    out["litert_quantizer_over_fp32"] = bench_workers.ratio(times["litert_quantizer"], times["fp32"])
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

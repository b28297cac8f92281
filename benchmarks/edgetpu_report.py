"""Per-model int8 op coverage and predicted Edge TPU mapping, default int8 export vs
`export(..., target="edgetpu")`.

For every package model at its default input size (MobileOne reparameterized, its deployment
form): full-int8 export with uint8 input (random-pixel calibration: op coverage and mapping do
not depend on the ranges), then `keras_mobile.tflite.edgetpu.analyze` (offline: published op
rules + the compiler's single cut point), and the same for target="edgetpu". Each model runs
in its own subprocess (TF memory stays flat over 30 conversions).

    python benchmarks/edgetpu_report.py                      # all models -> results/edgetpu_report.{json,md}
    python benchmarks/edgetpu_report.py --models MobileNetV3Small MobileOneS0   # updates those rows
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
CALIBRATION_SAMPLES = 8


def _variant(report, analysis):
    first = analysis.first_cpu_op
    return {
        "file_kib": round(report.file_bytes / 1024, 1),
        "ops": int(sum(report.ops.values())),
        "fully_integer": bool(report.fully_integer),
        "float_ops": sorted({op for _, op, _ in report.float_ops}),
        "xnnpack_partitions": int(report.delegate_partitions),
        "edgetpu_mapped_ops": int(analysis.mapped_ops),
        "edgetpu_total_ops": len(analysis.ops),
        "edgetpu_mapped_pct": round(100 * analysis.mapped_fraction, 1),
        "edgetpu_first_cpu_op": None if first is None else f"#{first.index} {first.op}: {first.reason}",
        "edgetpu_fatal": list(analysis.fatal),
        "edgetpu_parameter_mib": round(analysis.parameter_bytes / 2 ** 20, 2),
        "edgetpu_off_chip_mib": round(analysis.off_chip_bytes / 2 ** 20, 2),
        "convert_seconds": report.extra.get("convert_seconds"),
    }


def one(name):
    """Measures one model; returns a JSON-able dict."""
    import numpy as np

    import keras_mobile
    from keras_mobile.applications.registry import get_model
    from keras_mobile.tflite import edgetpu, export
    model = get_model(name)(weights=None)
    label = name
    if name.startswith("MobileOne"):
        model = keras_mobile.reparameterize(model)
        label = f"{name} (fused)"
    shape = tuple(model.input_shape[1:])
    calib = np.random.default_rng(0).uniform(0, 255, (CALIBRATION_SAMPLES,) + shape).astype("float32")
    out = {"model": label, "input": list(shape), "params_m": round(model.count_params() / 1e6, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        plain = export(model, os.path.join(tmp, "int8.tflite"), "int8", representative_data=calib,
                       num_calibration_steps=CALIBRATION_SAMPLES, progress=False)
        out["int8"] = _variant(plain, edgetpu.analyze(plain.path))
        tpu = export(model, os.path.join(tmp, "edgetpu.tflite"), target="edgetpu", representative_data=calib,
                     num_calibration_steps=CALIBRATION_SAMPLES, progress=False)
        out["edgetpu"] = _variant(tpu, tpu.extra["edgetpu"])
        out["edgetpu"]["lowering"] = tpu.extra["lowering"]
    return out


def _short(first):
    return "-" if not first else first.split(":")[0]


def to_markdown(rows):
    lines = [
        "# Edge TPU report: default int8 export vs `export(..., target=\"edgetpu\")`",
        "",
        "Offline prediction (`keras_mobile.tflite.edgetpu.analyze`: published Edge TPU op rules + the "
        "compiler's single cut point; no compiler on this machine). int8 = full-integer export with uint8 "
        "input and float output; edgetpu = uint8 input and output, Edge TPU lowerings. Sizes are the .tflite "
        "files. Random weights (op coverage and mapping do not depend on them), random-pixel calibration, "
        "default input size, MobileOne reparameterized.",
        "",
        "| model | input | params (M) | int8 all-integer | int8 KiB | mapped % int8 | first CPU op (int8) | "
        "edgetpu KiB | mapped % edgetpu | first CPU op (edgetpu) | params off-chip (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error'][:120]} |" + " |" * 9)
            continue
        a, b = r["int8"], r["edgetpu"]
        integer = "yes" if a["fully_integer"] else "no: " + ", ".join(a["float_ops"])
        lines.append(
            f"| {r['model']} | {r['input'][0]} | {r['params_m']} | {integer} | {a['file_kib']:.0f} | "
            f"{a['edgetpu_mapped_pct']:.1f} ({a['edgetpu_mapped_ops']}/{a['edgetpu_total_ops']}) | "
            f"{_short(a['edgetpu_first_cpu_op'])} | {b['file_kib']:.0f} | "
            f"{b['edgetpu_mapped_pct']:.1f} ({b['edgetpu_mapped_ops']}/{b['edgetpu_total_ops']}) | "
            f"{_short(b['edgetpu_first_cpu_op'])} | {b['edgetpu_off_chip_mib']} |")
    lines += ["", "Lowerings applied by target=\"edgetpu\":", ""]
    for r in rows:
        if "error" not in r:
            lines.append(f"- {r['model']}: {r['edgetpu']['lowering']}")
    lines += ["", "Where the graph falls back to the CPU (edgetpu export): ", ""]
    for r in rows:
        if "error" not in r and r["edgetpu"]["edgetpu_first_cpu_op"]:
            lines.append(f"- {r['model']}: {r['edgetpu']['edgetpu_first_cpu_op']}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=os.path.join(RESULTS, "edgetpu_report"))
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(one(args.one)), flush=True)
        return 0
    from tqdm.auto import tqdm

    from keras_mobile.applications.registry import list_models
    names = args.models or sorted(list_models())
    rows = []
    for name in tqdm(names, desc="models", unit="model"):
        t0 = time.time()
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name], capture_output=True,
                              text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        found = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not found:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            rows.append({"model": name, "error": tail[0]})
        else:
            rows.append(json.loads(found[0]))
        tqdm.write(f"{name}: {time.time() - t0:.0f} s")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    if args.models and os.path.isfile(args.out + ".json"):     # a subset updates the existing report
        with open(args.out + ".json") as f:
            old = json.load(f)["models"]
        fresh = {r["model"].split(" ")[0]: r for r in rows}
        rows = [fresh.pop(r["model"].split(" ")[0], r) for r in old] + list(fresh.values())
    from _setup import write_result   # benchmarks/ is on sys.path when run as a script
    write_result(args.out, {"calibration_samples": CALIBRATION_SAMPLES, "models": rows}, to_markdown(rows))
    print(to_markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

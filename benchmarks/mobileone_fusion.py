"""MobileOne S0-S4: reparameterized (fused) vs train-time (unfused) latency, Keras and TFLite, batch 1.

    python benchmarks/mobileone_fusion.py                    # measure (keras + tflite parts)
    python benchmarks/mobileone_fusion.py --int8             # also int8 TFLite of both forms
    python benchmarks/mobileone_fusion.py --from benchmarks/results/latest.json   # extract

Each unfused/fused pair is timed in interleaved rounds in one process (benchmarks/run.py
machinery); speed-up = median of per-round unfused/fused time ratios. Writes
results/mobileone_fusion.json and .md.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_render  # noqa: E402
import run as bench_run  # noqa: E402

MODELS = [f"MobileOneS{i}" for i in range(5)]


def extract(r):
    """The MobileOne part of a full benchmarks/run.py results dict."""
    keep = {n for n in MODELS} | {n + "[fused]" for n in MODELS}
    out = dict(r, groups=[g for g in r["groups"] if g[0] in MODELS])
    for part in ("keras", "tflite", "torch"):
        blocks = [out[part]] if part != "keras" else list(out[part].values())
        for b in blocks:
            if isinstance(b, dict):
                for key in ("models", "ratios"):
                    if key in b:
                        b[key] = {k: v for k, v in b[key].items() if k.split(" / ")[0] in keep}
    out["extracted_from"] = r.get("command")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="source", default=None, help="extract from a run.py results JSON instead")
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--int8", action="store_true", help="also full-integer int8 TFLite (slow for unfused)")
    p.add_argument("--budget", type=float, default=15.0,
                   help="seconds of interleaved rounds per pair (longer than run.py's: cleaner ratios)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    a = p.parse_args(argv)
    if a.source:
        with open(a.source) as f:
            r = extract(json.load(f))
        if not r["groups"]:
            p.error(f"{a.source} has no MobileOne results")
    else:
        quants = ("float32", "int8") if a.int8 else ("float32",)
        r = bench_run.run(a.models, quick=a.quick, threads=a.threads, batches=(1,), parts=("keras", "tflite"),
                          quants=quants, int8_unfused=a.int8, settings={"budget": a.budget, "min_runs": 10},
                          name="mobileone_fusion", out_dir=a.out,
                          command="python benchmarks/mobileone_fusion.py " + " ".join(argv or sys.argv[1:]))
    md = bench_render.render(r, sections=("fusion",))
    with open(os.path.join(a.out, "mobileone_fusion.json"), "w") as f:
        json.dump(r, f, indent=1)
    with open(os.path.join(a.out, "mobileone_fusion.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

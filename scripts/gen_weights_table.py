"""Regenerates keras_mobile/assets/timm_weights.json from timm's pretrained configs.

Run with timm installed (test extra): python scripts/gen_weights_table.py
The package reads only the JSON at run time; timm stays a test-only dependency.
"""
import json
import os

import timm

PATTERNS = ["mobilenetv3_*", "tf_mobilenetv3_*", "mobilenetv4_*", "mobileone_*", "efficientformer_l*"]
KEEP = ("input_size", "test_input_size", "mean", "std", "num_classes", "crop_pct", "interpolation", "hf_hub_id")


def main():
    table = {}
    for pattern in PATTERNS:
        for arch in timm.list_models(pattern, exclude_filters=["*_ra4_*"]):
            names = timm.list_pretrained(arch + ".*")
            if not names:
                continue
            default = timm.models.get_pretrained_cfg(arch).to_dict()
            entry = {"default_tag": default.get("tag") or names[0].split(".", 1)[1], "tags": {}}
            for full in names:
                cfg = timm.models.get_pretrained_cfg(full).to_dict()
                if not cfg.get("hf_hub_id"):
                    continue
                tag = full.split(".", 1)[1]
                entry["tags"][tag] = {k: list(cfg[k]) if isinstance(cfg.get(k), tuple) else cfg.get(k)
                                      for k in KEEP if cfg.get(k) is not None}
            if entry["tags"]:
                table[arch] = entry
    out = os.path.join(os.path.dirname(__file__), "..", "keras_mobile", "assets", "timm_weights.json")
    with open(out, "w") as f:
        json.dump({"_source": f"timm {timm.__version__} pretrained configs", "models": table}, f, indent=1, sort_keys=True)
    print(f"wrote {len(table)} architectures to {out}")


if __name__ == "__main__":
    main()

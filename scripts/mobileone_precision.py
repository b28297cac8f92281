"""Where does MobileOne-S4 lose float32 precision? (issue 14, randomised-BN fixture, seed 11)

One process (keras_mobile first, then timm: see keras_mobile/_triton_import.py). The timm fixture's
weights are loaded into timm (run in float32 and float64) and into keras_mobile (float32). For the
stem and every stage block the script prints, against timm float64: the max abs error of Keras
float32 and of timm float32, the block output's max |x|, and the error of Keras float32 when every
block is fed timm's float64 input (local error of that block alone), so error growth through the
network is separated from error made inside one block.

    KERAS_BACKEND=tensorflow python scripts/mobileone_precision.py --seed 11 [--json out.json]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

import keras_mobile  # noqa: E402
from keras_mobile.layers.naming import to_layer_name  # noqa: E402
from tests.timm_fixture import make_fixture  # noqa: E402


def timm_block_outputs(model, x):
    """[(module path, output)] of the stem and every stage block, in order."""
    import torch
    names = ["stem"] + [f"stages.{i}.{j}" for i, s in enumerate(model.stages) for j in range(len(s))]
    mods = dict(model.named_modules())
    outs = []
    hooks = [mods[n].register_forward_hook(lambda m, i, o, n=n: outs.append((n, o.detach().numpy()))) for n in names]
    with torch.no_grad():
        logits = model(x).numpy()
    for h in hooks:
        h.remove()
    return outs, logits


def fused_rows(t64, k, x, xt, logits64):
    """Reparameterized (fused) models against the float64 train-time logits: Keras (folds in
    float32), timm folding in float32 (its own) or in float64."""
    import copy

    import torch
    from timm.utils import reparameterize_model

    rows = []
    y = keras.ops.convert_to_numpy(keras_mobile.reparameterize(k)(x, training=False))
    rows.append({"block": "fused keras32", "max_abs": float(np.abs(logits64).max()),
                 "keras32": float(np.abs(y - logits64).max()), "timm32": None, "keras32_local": None})
    for fold in ("float32", "float64"):
        m = copy.deepcopy(t64)
        m = reparameterize_model(m.float() if fold == "float32" else m).float()
        with torch.no_grad():
            y = m(xt).numpy()
        rows.append({"block": f"fused timm32, fold {fold}", "max_abs": float(np.abs(logits64).max()),
                     "keras32": None, "timm32": float(np.abs(y - logits64).max()), "keras32_local": None})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--model", default="mobileone_s4")
    ap.add_argument("--json")
    ap.add_argument("--no-blocks", action="store_true", help="logits only (train-time and fused)")
    a = ap.parse_args()
    path, x, ref64, _ = make_fixture(a.model, seed=a.seed, float64=True)
    import timm
    import torch
    from safetensors.torch import load_file
    t = timm.create_model(a.model, pretrained=False).eval()
    t.load_state_dict(load_file(path))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    outs32, logits32 = timm_block_outputs(t, xt)
    outs64, logits64 = timm_block_outputs(t.double(), xt.double())
    ctor = getattr(keras_mobile, "MobileOneS" + a.model[-1])
    k = ctor(weights=path, input_shape=x.shape[1:], include_preprocessing=False, classifier_activation=None)
    names = [n for n, _ in outs64]
    taps = keras.Model(k.input, [k.get_layer(to_layer_name(n)).output for n in names])
    kouts = [keras.ops.convert_to_numpy(o) for o in taps(x, training=False)]
    klogits = keras.ops.convert_to_numpy(k(x, training=False))
    rows = []
    prev64 = x.astype(np.float64)
    for (n, o32), (_, o64), ko in zip(*(([], [], []) if a.no_blocks else (outs32, outs64, kouts))):
        o64n = o64.transpose(0, 2, 3, 1)
        layer = k.get_layer(to_layer_name(n))
        local = keras.ops.convert_to_numpy(layer(prev64.astype(np.float32), training=False))
        rows.append({"block": n, "max_abs": float(np.abs(o64n).max()),
                     "keras32": float(np.abs(ko - o64n).max()),
                     "timm32": float(np.abs(o32.transpose(0, 2, 3, 1) - o64n).max()),
                     "keras32_local": float(np.abs(local - o64n).max())})
        prev64 = o64n
    rows.append({"block": "logits", "max_abs": float(np.abs(logits64).max()),
                 "keras32": float(np.abs(klogits - logits64).max()),
                 "timm32": float(np.abs(logits32 - logits64).max()), "keras32_local": None})
    rows += fused_rows(t, k, x, xt, logits64)
    print(f"{a.model} seed {a.seed}, backend {keras.backend.backend()}: errors against timm float64")
    print(f"{'block':14s} {'max|x|':>9s} {'keras32':>9s} {'timm32':>9s} {'keras32 local':>13s}")
    for r in rows:
        f = lambda v: "" if v is None else f"{v:.3g}"  # noqa: E731
        print(f"{r['block']:14s} {r['max_abs']:9.3g} {f(r['keras32']):>9s} {f(r['timm32']):>9s} "
              f"{f(r['keras32_local']):>13s}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "seed": a.seed, "backend": keras.backend.backend(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

"""timm parity fixtures: timm models with seeded random weights and randomised BN statistics.

`randomize_` is the project's reference recipe (BN affine + running stats, LayerScale gammas
and EfficientFormer attention biases randomised, BN stats calibrated so logits stay O(1)).

torch and TensorFlow crash when loaded into one process, so tests call `make_fixture`, which
runs this file as a script in a subprocess (torch side) and reads back the files it wrote.
Fixtures are cached per (model, size, batch, seed, reparam) in FIXTURE_DIR (default: a temp
folder for the test session).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# checked without importing: torch must not be loaded next to TensorFlow
MISSING_TIMM = [m for m in ("torch", "timm") if importlib.util.find_spec(m) is None]
HAVE_TIMM = not MISSING_TIMM
FIXTURE_DIR = os.environ.get("KERAS_MOBILE_FIXTURE_DIR") or os.path.join(
    tempfile.gettempdir(), f"keras_mobile_fixtures_{os.getuid()}")


def make_fixture(timm_name, out_dir=None, size=None, batch=2, seed=0, input_seed=1, reparam=False,
                 float64=False):
    """(safetensors path, input NHWC float32, timm logits, timm parameter count).

    float64=True returns the same timm model evaluated in float64 (the exact-arithmetic
    reference) instead of its float32 logits, for ill-conditioned models (MobileOne-S4)."""
    import pytest
    if MISSING_TIMM:  # a failure under CI=true (tests/ci_gate.py matches "not installed")
        pytest.skip(f"{'/'.join(MISSING_TIMM)} not installed (in the test extra)")
    folder = _folder(timm_name, size, batch, seed, input_seed, reparam)
    meta_path = os.path.join(folder, "meta.json")
    if not os.path.exists(meta_path):
        cmd = [sys.executable, __file__, timm_name, "--out", folder, "--batch", str(batch),
               "--seed", str(seed), "--input-seed", str(input_seed)]
        if size:
            cmd += ["--size", str(size)]
        if reparam:
            cmd += ["--reparam"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_")}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    with open(meta_path) as f:
        meta = json.load(f)
    x = np.load(os.path.join(folder, "input.npy")).transpose(0, 2, 3, 1).copy()
    logits = np.load(os.path.join(folder, "logits64.npy" if float64 else "logits.npy"))
    return os.path.join(folder, "model.safetensors"), x, logits, meta["params"]


def _folder(timm_name, size=None, batch=2, seed=0, input_seed=1, reparam=False):
    key = f"{timm_name}_s{size or 'def'}_b{batch}_seed{seed}_{input_seed}{'_reparam' if reparam else ''}_v2"
    return os.path.join(FIXTURE_DIR, key)


def timm_float32_error(timm_name, **kwargs):
    """How far timm's own float32 logits are from its float64 logits on the same fixture."""
    make_fixture(timm_name, **kwargs)
    kwargs.pop("float64", None)
    with open(os.path.join(_folder(timm_name, **kwargs), "meta.json")) as f:
        return json.load(f)["timm_fp32_vs_fp64"]


def randomize_(model: nn.Module, seed: int, input_size, calibrate: bool = True):
    """Seeded randomization of BN affine + running stats, LayerScale gammas and attention biases.

    calibrate=True: BN running stats are first set, layer by layer in eval mode, to the statistics of each BN's
    input on one seeded N(0,1) batch of 8, then perturbed (mean += 0.02*std*N(0,1), var *= U(0.9, 1.1), var floored at 1e-2; larger perturbations compound over depth, e.g. MobileOne-S4 logits reached |x|~70).
    This keeps activations O(1) through depth (pure random stats blow logits up to |x|~1e2) while every BN
    still has distinct, non-trivial running_mean/var. calibrate=False: running stats drawn independently.
    """
    torch.set_grad_enabled(False)
    g = torch.Generator().manual_seed(seed + 1000)
    counts = dict(batchnorm=0, layer_scale=0, attention_biases=0, calibrated=calibrate)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        c = m.num_features
        if m.affine:
            m.weight.copy_(torch.rand(c, generator=g) * 1.0 + 0.5)    # U(0.5, 1.5)
            m.bias.copy_(torch.randn(c, generator=g) * 0.1)
        m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
        m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)   # U(0.5, 2.0)
        counts['batchnorm'] += 1
    for name, m in model.named_modules():
        if 'LayerScale' in type(m).__name__ and hasattr(m, 'gamma'):
            # init is 1e-5 (blocks ~identity); use U(0.1, 0.6) so the residual branch matters
            m.gamma.copy_(torch.rand(m.gamma.shape, generator=g) * 0.5 + 0.1)
            counts['layer_scale'] += 1
        if hasattr(m, 'attention_biases') and isinstance(m.attention_biases, nn.Parameter):
            m.attention_biases.copy_(torch.randn(m.attention_biases.shape, generator=g) * 0.5)
            if hasattr(m, 'attention_bias_cache'):
                m.attention_bias_cache = {}
            counts['attention_biases'] += 1
    if calibrate:
        # Sequential eval-mode calibration: a forward_pre_hook on every BN writes the batch mean/var of the
        # BN's *input* into its running stats just before it runs (in eval mode), so each BN sees upstream
        # layers already using their final eval stats (no train/eval mismatch compounding over depth).
        def _pre(mod, inp):
            x = inp[0]
            dims = [d for d in range(x.ndim) if d != 1]
            mod.running_mean.copy_(x.mean(dims))
            mod.running_var.copy_(x.var(dims, unbiased=True))
        hooks = [m.register_forward_pre_hook(_pre) for m in bns]
        model.eval()
        xc = torch.randn(8, *input_size, generator=torch.Generator().manual_seed(seed + 2000))
        model(xc)
        for h in hooks:
            h.remove()
        for m in bns:
            std = m.running_var.sqrt()
            m.running_mean.add_(0.02 * std * torch.randn(m.num_features, generator=g))
            m.running_var.mul_(torch.rand(m.num_features, generator=g) * 0.2 + 0.9)
            # floor: channels that are ~dead (var ~1e-8) would make eval amplify tiny differences by
            # ~1/sqrt(eps) and the fixture ill-conditioned
            m.running_var.clamp_(min=1e-2)
        for m in model.modules():
            if hasattr(m, 'attention_bias_cache'):
                m.attention_bias_cache = {}
    return counts




def _main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input-seed", type=int, default=1)
    ap.add_argument("--reparam", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = timm.create_model(a.model, pretrained=False, num_classes=1000)
    randomize_(model, a.seed, tuple(model.pretrained_cfg["input_size"]))
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    if a.reparam:
        from timm.utils import reparameterize_model
        model = reparameterize_model(model)
        params = sum(p.numel() for p in model.parameters())
    c, h, w = model.pretrained_cfg["input_size"]
    if a.size:
        h = w = a.size
    x = torch.randn(a.batch, c, h, w, generator=torch.Generator().manual_seed(a.input_seed))
    with torch.inference_mode():
        logits = model(x).numpy()
        logits64 = model.double()(x.double()).numpy()
        model.float()
    tmp = a.out + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()},
              os.path.join(tmp, "model.safetensors"))
    np.save(os.path.join(tmp, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(tmp, "logits.npy"), logits.astype(np.float32))
    np.save(os.path.join(tmp, "logits64.npy"), logits64)
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump({"model": a.model, "params": int(params), "timm": timm.__version__,
                   "timm_fp32_vs_fp64": float(np.abs(logits - logits64).max())}, f)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    if os.path.exists(a.out):
        import shutil
        shutil.rmtree(a.out)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    import torch
    import timm
    from safetensors.torch import save_file
    nn = torch.nn
    globals().update(torch=torch, nn=nn)
    _main()

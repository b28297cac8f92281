"""timm parity fixtures: timm models with seeded random weights and randomised BN statistics.

`randomize_` is the project's reference recipe (BN affine + running stats, LayerScale gammas
and EfficientFormer attention biases randomised, BN stats calibrated so logits stay O(1)).
`make_fixture` saves the state_dict as safetensors and returns the NHWC input and the logits.
Needs torch + timm (the test extra).
"""
import functools
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is in the test extra (timm parity)")
timm = pytest.importorskip("timm", reason="timm is in the test extra (timm parity)")
nn = torch.nn
from safetensors.torch import save_file  # noqa: E402


@torch.no_grad()
def randomize_(model: nn.Module, seed: int, input_size, calibrate: bool = True):
    """Seeded randomization of BN affine + running stats, LayerScale gammas and attention biases.

    calibrate=True: BN running stats are first set, layer by layer in eval mode, to the statistics of each BN's
    input on one seeded N(0,1) batch of 8, then perturbed (mean += 0.02*std*N(0,1), var *= U(0.9, 1.1), var floored at 1e-2; larger perturbations compound over depth, e.g. MobileOne-S4 logits reached |x|~70).
    This keeps activations O(1) through depth (pure random stats blow logits up to |x|~1e2) while every BN
    still has distinct, non-trivial running_mean/var. calibrate=False: running stats drawn independently.
    """
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



def make_fixture(timm_name, out_dir, size=None, batch=2, seed=0, input_seed=1, reparam=False):
    """Writes <out_dir>/<timm_name>.safetensors; returns (path, input NHWC, logits, timm trainable params)."""
    torch.manual_seed(seed)
    model = timm.create_model(timm_name, pretrained=False, num_classes=1000)
    randomize_(model, seed, tuple(model.pretrained_cfg["input_size"]))
    model.eval()
    if reparam:
        from timm.utils import reparameterize_model
        model = reparameterize_model(model)
    c, h, w = model.pretrained_cfg["input_size"]
    if size:
        h = w = size
    x = torch.randn(batch, c, h, w, generator=torch.Generator().manual_seed(input_seed))
    with torch.inference_mode():
        logits = model(x).numpy()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{timm_name}{'_reparam' if reparam else ''}.safetensors")
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, path)
    params = sum(p.numel() for p in model.parameters())
    return path, x.numpy().transpose(0, 2, 3, 1).copy(), logits, params

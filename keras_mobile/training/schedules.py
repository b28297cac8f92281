"""Learning-rate and regularisation schedules.

Keras already has cosine decay with a linear warmup (`keras.optimizers.schedules.CosineDecay`
with `warmup_target`/`warmup_steps`); `cosine_with_warmup` only turns "peak LR, total steps,
warmup steps" into its arguments, whose `decay_steps` counts the steps *after* the warmup.
`cosine_anneal` is the same curve as a plain function, for per-epoch values (weight decay).
"""
import math

import keras


def cosine_with_warmup(peak_lr, total_steps, warmup_steps=0, initial_lr=0.0, final_lr=0.0):
    """Linear warmup from `initial_lr` to `peak_lr` over `warmup_steps`, then cosine decay to
    `final_lr` at `total_steps` (and constant after).

    Args:
        peak_lr: learning rate at the end of the warmup.
        total_steps: optimizer steps of the whole run (epochs * steps_per_epoch), warmup included.
        warmup_steps: steps of linear warmup (0: start at `peak_lr`).
        initial_lr: learning rate at step 0 when warming up.
        final_lr: learning rate reached at `total_steps`.

    Returns:
        a `keras.optimizers.schedules.CosineDecay` (serialisable, works on every backend).
    """
    total_steps, warmup_steps = int(total_steps), int(warmup_steps)
    if peak_lr <= 0:
        raise ValueError(f"peak_lr must be > 0, got {peak_lr}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps}")
    if not 0 <= final_lr <= peak_lr:
        raise ValueError(f"final_lr must be in [0, peak_lr={peak_lr}], got {final_lr}")
    alpha = final_lr / peak_lr
    decay_steps = total_steps - warmup_steps
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(peak_lr, decay_steps, alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(initial_lr, decay_steps, alpha=alpha,
                                                  warmup_target=peak_lr, warmup_steps=warmup_steps)


def cosine_anneal(step, total_steps, start, end):
    """Cosine interpolation from `start` (step 0) to `end` (step >= total_steps)."""
    if total_steps <= 0:
        return end
    t = min(max(step, 0), total_steps) / total_steps
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * t))

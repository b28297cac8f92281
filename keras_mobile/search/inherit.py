"""Copy a parent's weights into a narrower child built from the same table.

Layers are matched by name (the same table position builds the same name, whatever the naming
scheme); a weight axis whose size shrank keeps the channels listed for that (old, new) size
pair, so every layer touching a pruned tensor keeps the same channels. Pairs not given are
ranked the first time they are met by the L2 norm of that weight's slices along the axis (for
an SE reduce conv whose width follows the expansion width).
"""
import numpy as np


def l2_rank(kernel, keep, axis=-1):
    """Indices (sorted) of the `keep` slices of `kernel` along `axis` with the largest L2 norm."""
    k = np.moveaxis(np.asarray(kernel), axis, -1).reshape(-1, kernel.shape[axis])
    norms = np.sqrt((k.astype(np.float64) ** 2).sum(0))
    order = np.argsort(-norms, kind="stable")[:keep]
    return np.sort(order)


def inherit(parent, child, kept=None):
    """Set `child`'s weights from `parent`'s, slicing shrunken axes; returns the {(old, new): idx} used.

    kept: {(old_width, new_width): indices} chosen by the caller (e.g. by the expansion conv's
    filter norms); other shrunken sizes are ranked by the first weight that shows them."""
    kept = dict(kept or {})
    by_name = {l.name: l for l in parent.layers}
    for layer in child.layers:
        if not layer.weights:
            continue
        src = by_name.get(layer.name)
        if src is None or len(src.weights) != len(layer.weights):
            raise ValueError(f"cannot inherit {layer.name!r}: the parent has no matching layer")
        values = []
        for wc, wp in zip(layer.weights, src.weights):
            a = np.asarray(wp.numpy())
            for ax, (p, c) in enumerate(zip(a.shape, wc.shape)):
                if p == c:
                    continue
                if c > p:
                    raise ValueError(f"{layer.name}: child width {c} exceeds the parent's {p}")
                if (p, c) not in kept:
                    kept[(p, c)] = l2_rank(a, c, ax)
                a = np.take(a, kept[(p, c)], axis=ax)
            values.append(a)
        layer.set_weights(values)
    return kept

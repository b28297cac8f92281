"""SSD anchor generator. Anchors are (ycenter, xcenter, height, width), normalised to [0, 1]:
the layout TFLite_Detection_PostProcess takes."""
import numpy as np


def ssd_scales(num_levels, min_scale=0.2, max_scale=0.95):
    if num_levels == 1:
        return [min_scale]
    return [min_scale + (max_scale - min_scale) * i / (num_levels - 1) for i in range(num_levels)]


def anchors_per_location(aspect_ratios=(1.0, 2.0, 0.5)):
    return len(aspect_ratios) + 1   # + the geometric-mean-scale square anchor


def generate_anchors(feature_sizes, scales=None, aspect_ratios=(1.0, 2.0, 0.5)):
    """Anchors for feature maps ``[(h, w), ...]``, ordered level, y, x, anchor (the order the
    head reshapes its predictions in). Returns float32 [N, 4] (cy, cx, h, w)."""
    scales = list(scales) if scales is not None else ssd_scales(len(feature_sizes))
    scales_next = scales[1:] + [1.0]
    out = []
    for (fh, fw), s, s_next in zip(feature_sizes, scales, scales_next):
        shapes = [(s / np.sqrt(a), s * np.sqrt(a)) for a in aspect_ratios]
        shapes.append((np.sqrt(s * s_next),) * 2)
        cy = (np.arange(fh) + 0.5) / fh
        cx = (np.arange(fw) + 0.5) / fw
        yy, xx = np.meshgrid(cy, cx, indexing="ij")
        for y, x in zip(yy.ravel(), xx.ravel()):
            for h, w in shapes:
                out.append((y, x, h, w))
    return np.asarray(out, np.float32)

"""Faster R-CNN box coding with SSD scale factors (10, 10, 5, 5), identical to the decoding in
TFLite_Detection_PostProcess. Boxes are (ymin, xmin, ymax, xmax) normalised; anchors are
(cy, cx, h, w)."""
import tensorflow as tf

SCALES = (10.0, 10.0, 5.0, 5.0)


def corners_to_center(boxes):
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=-1)


def center_to_corners(boxes):
    cy, cx, h, w = tf.unstack(boxes, axis=-1)
    return tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def encode(boxes, anchors, scales=SCALES):
    """Corner boxes [..., N, 4] matched to anchors [N, 4] -> regression targets [..., N, 4]."""
    b = corners_to_center(boxes)
    a = tf.convert_to_tensor(anchors, tf.float32)
    eps = 1e-8
    ty = (b[..., 0] - a[:, 0]) / a[:, 2] * scales[0]
    tx = (b[..., 1] - a[:, 1]) / a[:, 3] * scales[1]
    th = tf.math.log(tf.maximum(b[..., 2], eps) / a[:, 2]) * scales[2]
    tw = tf.math.log(tf.maximum(b[..., 3], eps) / a[:, 3]) * scales[3]
    return tf.stack([ty, tx, th, tw], axis=-1)


def decode(codes, anchors, scales=SCALES):
    """Regressions [..., N, 4] -> corner boxes [..., N, 4]."""
    a = tf.convert_to_tensor(anchors, tf.float32)
    cy = codes[..., 0] / scales[0] * a[:, 2] + a[:, 0]
    cx = codes[..., 1] / scales[1] * a[:, 3] + a[:, 1]
    h = tf.exp(codes[..., 2] / scales[2]) * a[:, 2]
    w = tf.exp(codes[..., 3] / scales[3]) * a[:, 3]
    return tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)

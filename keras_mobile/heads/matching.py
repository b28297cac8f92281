"""IoU and SSD/RetinaNet target assignment (TensorFlow ops, usable inside train_step)."""
import tensorflow as tf

from keras_mobile.heads import box_coding


def iou(a, b):
    """Pairwise IoU of corner boxes a [N, 4] and b [M, 4] -> [N, M]."""
    a = a[:, None, :]
    b = b[None, :, :]
    ih = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    iw = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = ih * iw
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / tf.maximum(area_a + area_b - inter, 1e-8)


def assign_one(anchors, gt_boxes, gt_classes, pos_iou=0.5, neg_iou=0.4):
    """Targets for one image. gt_classes < 0 marks padding.

    Returns (box_targets [N, 4] encoded, class_targets [N] int: class id, -1 background,
    -2 ignored).  Each ground-truth box also claims its best anchor (bipartite step of SSD).
    """
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    n = tf.shape(anchors)[0]
    valid = gt_classes >= 0
    gt_boxes = tf.boolean_mask(gt_boxes, valid)
    gt_classes = tf.boolean_mask(tf.cast(gt_classes, tf.int32), valid)
    anchor_corners = box_coding.center_to_corners(anchors)

    def with_gt():
        m = iou(anchor_corners, gt_boxes)                      # [N, M]
        best = tf.argmax(m, axis=1, output_type=tf.int32)
        best_iou = tf.reduce_max(m, axis=1)
        # force-match: every gt gets its best anchor
        forced_anchor = tf.argmax(m, axis=0, output_type=tf.int32)   # [M]
        num_gt = tf.shape(gt_boxes)[0]
        best = tf.tensor_scatter_nd_update(best, forced_anchor[:, None], tf.range(num_gt))
        best_iou = tf.tensor_scatter_nd_update(best_iou, forced_anchor[:, None],
                                               tf.ones([num_gt], tf.float32))
        cls = tf.gather(gt_classes, best)
        cls = tf.where(best_iou >= pos_iou, cls,
                       tf.where(best_iou < neg_iou, -tf.ones_like(cls), -2 * tf.ones_like(cls)))
        boxes = box_coding.encode(tf.gather(gt_boxes, best), anchors)
        return boxes, cls

    def without_gt():
        return tf.zeros([n, 4], tf.float32), -tf.ones([n], tf.int32)

    return tf.cond(tf.shape(gt_boxes)[0] > 0, with_gt, without_gt)


def assign(anchors, gt_boxes, gt_classes, pos_iou=0.5, neg_iou=0.4):
    """Batched `assign_one`: gt_boxes [B, M, 4], gt_classes [B, M] (-1 padding)."""
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    gt_classes = tf.cast(gt_classes, tf.int32)
    return tf.map_fn(lambda t: assign_one(anchors, t[0], t[1], pos_iou, neg_iou),
                     (gt_boxes, gt_classes),
                     fn_output_signature=(tf.TensorSpec([None, 4], tf.float32),
                                          tf.TensorSpec([None], tf.int32)))

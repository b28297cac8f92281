"""Detection losses on assigned targets (see matching.assign)."""
import tensorflow as tf

CLASS_LOSSES = ("focal", "hard_negative")
BOX_LOSSES = ("smooth_l1", "giou")


def check_loss_names(class_loss, box_loss):
    """ValueError naming the argument when a loss name is not one of the known ones."""
    if class_loss not in CLASS_LOSSES:
        raise ValueError(f"class_loss must be one of {CLASS_LOSSES}, got {class_loss!r}")
    if box_loss not in BOX_LOSSES:
        raise ValueError(f"box_loss must be one of {BOX_LOSSES}, got {box_loss!r}")


def sigmoid_focal_loss(class_targets, logits, alpha=0.25, gamma=2.0):
    """Per-anchor focal loss summed over classes; ignored anchors (-2) give 0. [B, N]."""
    num_classes = tf.shape(logits)[-1]
    onehot = tf.one_hot(tf.maximum(class_targets, 0), num_classes)
    onehot = onehot * tf.cast(class_targets >= 0, tf.float32)[..., None]
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=onehot, logits=logits)
    p = tf.sigmoid(logits)
    p_t = onehot * p + (1 - onehot) * (1 - p)
    a_t = onehot * alpha + (1 - onehot) * (1 - alpha)
    loss = tf.reduce_sum(a_t * tf.pow(1 - p_t, gamma) * ce, axis=-1)
    return loss * tf.cast(class_targets > -2, tf.float32)


def hard_negative_ce(class_targets, logits, neg_pos_ratio=3):
    """Sigmoid CE with SSD hard-negative mining: all positives + the top `neg_pos_ratio` x
    num_positives negatives per image. [B, N]."""
    num_classes = tf.shape(logits)[-1]
    onehot = tf.one_hot(tf.maximum(class_targets, 0), num_classes)
    onehot = onehot * tf.cast(class_targets >= 0, tf.float32)[..., None]
    ce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=onehot, logits=logits), -1)
    pos = class_targets >= 0
    neg = tf.equal(class_targets, -1)
    num_neg = tf.cast(tf.reduce_sum(tf.cast(pos, tf.float32), 1) * neg_pos_ratio, tf.int32)
    num_neg = tf.maximum(num_neg, 1)
    neg_loss = tf.where(neg, ce, tf.zeros_like(ce))
    rank = tf.argsort(tf.argsort(neg_loss, axis=1, direction="DESCENDING"), axis=1)
    hard = neg & (rank < num_neg[:, None])
    return ce * tf.cast(pos | hard, tf.float32)


def smooth_l1(box_targets, box_pred, class_targets, delta=1.0):
    """Huber loss on encoded boxes of positive anchors, summed over coordinates. [B, N]."""
    d = tf.abs(box_targets - box_pred)
    l = tf.where(d < delta, 0.5 * d * d / delta, d - 0.5 * delta)
    return tf.reduce_sum(l, -1) * tf.cast(class_targets >= 0, tf.float32)


def giou_loss(box_targets, box_pred, class_targets, anchors):
    """1 - GIoU of decoded boxes on positive anchors. [B, N]."""
    from keras_mobile.heads import box_coding
    t = box_coding.decode(box_targets, anchors)
    p = box_coding.decode(box_pred, anchors)
    ih = tf.maximum(tf.minimum(t[..., 2], p[..., 2]) - tf.maximum(t[..., 0], p[..., 0]), 0.0)
    iw = tf.maximum(tf.minimum(t[..., 3], p[..., 3]) - tf.maximum(t[..., 1], p[..., 1]), 0.0)
    inter = ih * iw
    at = (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
    ap = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    union = at + ap - inter
    ch = tf.maximum(t[..., 2], p[..., 2]) - tf.minimum(t[..., 0], p[..., 0])
    cw = tf.maximum(t[..., 3], p[..., 3]) - tf.minimum(t[..., 1], p[..., 1])
    c = ch * cw
    giou = inter / tf.maximum(union, 1e-8) - (c - union) / tf.maximum(c, 1e-8)
    return (1.0 - giou) * tf.cast(class_targets >= 0, tf.float32)

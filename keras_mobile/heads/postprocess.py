"""Decode + NMS, in TensorFlow (Keras side) and as the TFLite_Detection_PostProcess custom op.

Both use the op's "fast" mode (use_regular_nms=False, max_classes_per_detection=1): each
anchor keeps its best class score, then class-agnostic NMS. Scores are sigmoid probabilities
(no background column, so the op's label offset is 0)."""
import tensorflow as tf

from keras_mobile.heads import box_coding


def nms(box_codes, class_logits, anchors, score_threshold=0.3, iou_threshold=0.5,
        max_detections=20):
    """Batched detections. Returns dict boxes [B, K, 4] (ymin, xmin, ymax, xmax, normalised),
    classes [B, K] float, scores [B, K], num_detections [B]; rows beyond num are zero."""
    boxes = box_coding.decode(tf.cast(box_codes, tf.float32), anchors)
    scores = tf.sigmoid(tf.cast(class_logits, tf.float32))

    def one(args):
        b, s = args
        best = tf.reduce_max(s, axis=-1)
        cls = tf.cast(tf.argmax(s, axis=-1), tf.float32)
        idx = tf.image.non_max_suppression(b, best, max_detections, iou_threshold, score_threshold)
        n = tf.shape(idx)[0]
        pad = max_detections - n
        return (tf.pad(tf.gather(b, idx), [[0, pad], [0, 0]]),
                tf.pad(tf.gather(cls, idx), [[0, pad]]),
                tf.pad(tf.gather(best, idx), [[0, pad]]),
                tf.cast(n, tf.float32))

    b, c, s, n = tf.map_fn(one, (boxes, scores), fn_output_signature=(
        tf.TensorSpec([max_detections, 4], tf.float32), tf.TensorSpec([max_detections], tf.float32),
        tf.TensorSpec([max_detections], tf.float32), tf.TensorSpec([], tf.float32)))
    return {"boxes": b, "classes": c, "scores": s, "num_detections": n}


def tflite_postprocess_fn(num_classes, max_detections=20, score_threshold=0.3, iou_threshold=0.5,
                          scales=box_coding.SCALES):
    """A tf.function the TFLite converter legalises to the TFLite_Detection_PostProcess custom op
    (the TF Object Detection API's export pattern: an empty composite function whose
    `experimental_implements` attribute names the op and carries its attributes)."""
    attrs = [
        'name: "TFLite_Detection_PostProcess"',
        'attr { key: "max_detections" value { i: %d } }' % max_detections,
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        'attr { key: "detections_per_class" value { i: %d } }' % max_detections,
        'attr { key: "use_regular_nms" value { b: false } }',
        'attr { key: "nms_score_threshold" value { f: %f } }' % score_threshold,
        'attr { key: "nms_iou_threshold" value { f: %f } }' % iou_threshold,
        'attr { key: "y_scale" value { f: %f } }' % scales[0],
        'attr { key: "x_scale" value { f: %f } }' % scales[1],
        'attr { key: "h_scale" value { f: %f } }' % scales[2],
        'attr { key: "w_scale" value { f: %f } }' % scales[3],
        'attr { key: "num_classes" value { i: %d } }' % num_classes,
    ]

    @tf.function(experimental_implements=" ".join(attrs))
    def postprocess(box_encodings, class_predictions, anchors):
        boxes = tf.constant(0.0, dtype=tf.float32, name="boxes")
        scores = tf.constant(0.0, dtype=tf.float32, name="scores")
        classes = tf.constant(0.0, dtype=tf.float32, name="classes")
        num_detections = tf.constant(0.0, dtype=tf.float32, name="num_detections")
        return boxes, classes, scores, num_detections

    return postprocess

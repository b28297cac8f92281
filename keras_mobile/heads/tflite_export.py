"""Heads -> .tflite through the package's one exporter (`keras_mobile.tflite.export`).

A head is exported as a plain functional model over its own layers (shared weights): the
segmenter's logits as they are; the detector's box codes and class logits, optionally followed
by `DetectionPostProcess`, which the converter turns into the TFLite_Detection_PostProcess
custom op (boxes, classes, scores, count: the outputs Android detectors expect).
"""
import keras
import numpy as np
import tensorflow as tf

from keras_mobile.heads import postprocess


class DetectionPostProcess(keras.layers.Layer):
    """Decode + class-agnostic NMS as the TFLite_Detection_PostProcess custom op (export only:
    in TensorFlow it is an empty composite function that only the TFLite converter implements).
    Outputs boxes [1, K, 4], classes [1, K], scores [1, K], num_detections [1]."""

    def __init__(self, anchors, num_classes, max_detections=20, score_threshold=0.3,
                 iou_threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.anchors = np.asarray(anchors, np.float32)
        self.op = postprocess.tflite_postprocess_fn(num_classes, max_detections, score_threshold,
                                                    iou_threshold)

    def call(self, box_codes, class_logits):
        return self.op(box_codes, tf.sigmoid(class_logits), tf.constant(self.anchors))


def export_head(model, outputs, path, kind, metadata=None, labels=None, allow_custom_ops=False,
                **export_kwargs):
    """Exports `outputs` (tensors of `model`'s graph) with `keras_mobile.tflite.export` and
    returns its report. metadata/labels as in `export`, with the head's `kind` ("detector" or
    "segmenter") for MediaPipe Tasks; any other `export` argument passes through."""
    from keras_mobile.tflite.export import export
    serving = keras.Model(model.inputs[0], outputs, name=model.name)
    if metadata is True or isinstance(metadata, dict) or labels is not None:
        metadata = {"kind": kind, **(metadata if isinstance(metadata, dict) else {})}
    return export(serving, path, metadata=metadata, labels=labels,
                  allow_custom_ops=allow_custom_ops, **export_kwargs)

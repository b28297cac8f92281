"""SSDLite (MobileNetV2/V3 papers): depthwise-separable predictors on backbone maps plus extra
downsampling layers, with target assignment, focal/hard-negative loss and NMS."""
import numpy as np
import keras
import tensorflow as tf

from keras_mobile.applications.features import feature_extractor, pyramid_outputs
from keras_mobile.heads import anchors as anchor_lib
from keras_mobile.heads import losses, matching, postprocess
from keras_mobile.layers.naming import child, to_layer_name


def _conv_bn_relu6(x, filters, kernel, strides, name, depthwise=False):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, strides, padding="same", use_bias=False,
                                         name=child(name, "conv"))(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False,
                                name=child(name, "conv"))(x)
    x = keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=child(name, "bn"))(x)
    return keras.layers.ReLU(6.0, name=child(name, "act"))(x)


# XNNPACK (LiteRT 2.3) delegates CONCATENATION with at most 5 inputs: a 6-map detector's
# single concat ran on the reference kernel (float32 and int8; in int8 it cut the graph in two).
XNNPACK_MAX_CONCAT_INPUTS = 5


def _concat_rows(tensors, name):
    """Concatenates along axis 1 in groups XNNPACK can delegate (a concat of concats is the same
    tensor; the converter keeps the nesting)."""
    groups = [tensors[i:i + XNNPACK_MAX_CONCAT_INPUTS]
              for i in range(0, len(tensors), XNNPACK_MAX_CONCAT_INPUTS)]
    if len(groups) > 1:
        tensors = [g[0] if len(g) == 1 else
                   keras.layers.Concatenate(axis=1, name=f"{name}-part{k}")(g)
                   for k, g in enumerate(groups)]
        return _concat_rows(tensors, name)
    return keras.layers.Concatenate(axis=1, name=name)(tensors)


def _predictor(x, filters, name, bias_init="zeros"):
    """SSDLite predictor: 3x3 depthwise + BN + ReLU6, then a 1x1 conv."""
    x = _conv_bn_relu6(x, None, 3, 1, child(name, "dw"), depthwise=True)
    return keras.layers.Conv2D(filters, 1, name=child(name, "pw"), bias_initializer=bias_init)(x)


class SSDLiteModel(keras.Model):
    """Functional SSDLite with the detection loss in `compute_loss`.

    Outputs {"boxes": [B, N, 4] encoded regressions, "classes": [B, N, C] logits}. Targets for
    fit(): {"boxes": [B, M, 4] (ymin, xmin, ymax, xmax) in [0, 1], "classes": [B, M] int, -1 =
    padding}.
    """

    def __init__(self, *args, anchors=None, num_classes=None, class_loss="focal",
                 box_loss="smooth_l1", box_weight=1.0, **kwargs):
        losses.check_loss_names(class_loss, box_loss)
        super().__init__(*args, **kwargs)
        self.anchors = np.asarray(anchors, np.float32)
        self.num_classes = num_classes
        self.class_loss = class_loss
        self.box_loss = box_loss
        self.box_weight = box_weight

    def detection_loss(self, y, y_pred):
        box_t, cls_t = matching.assign(self.anchors, y["boxes"], y["classes"])
        box_p = tf.cast(y_pred["boxes"], tf.float32)
        cls_p = tf.cast(y_pred["classes"], tf.float32)
        num_pos = tf.maximum(tf.reduce_sum(tf.cast(cls_t >= 0, tf.float32)), 1.0)
        if self.class_loss == "focal":
            cl = losses.sigmoid_focal_loss(cls_t, cls_p)
        else:
            cl = losses.hard_negative_ce(cls_t, cls_p)
        if self.box_loss == "smooth_l1":
            bl = losses.smooth_l1(box_t, box_p, cls_t)
        else:                                    # "giou" (names checked in __init__)
            bl = losses.giou_loss(box_t, box_p, cls_t, self.anchors)
        return (tf.reduce_sum(cl) + self.box_weight * tf.reduce_sum(bl)) / num_pos

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.detection_loss(y, y_pred)
        if self.losses:
            loss = loss + tf.add_n(self.losses)
        return loss

    def predict_detections(self, images, score_threshold=0.3, iou_threshold=0.5,
                           max_detections=20, batch_size=16):
        """Decode + class-agnostic NMS (same algorithm as the TFLite post-process op).
        Returns numpy dict boxes/classes/scores/num_detections."""
        outs = []
        for i in range(0, len(images), batch_size):
            raw = self(tf.convert_to_tensor(images[i:i + batch_size]), training=False)
            outs.append(postprocess.nms(raw["boxes"], raw["classes"], self.anchors,
                                        score_threshold, iou_threshold, max_detections))
        return {k: np.concatenate([o[k].numpy() for o in outs]) for k in outs[0]}

    def export_tflite(self, path, quantization=None, representative_data=None, postprocess_op=True,
                      score_threshold=0.3, iou_threshold=0.5, max_detections=20, metadata=None,
                      labels=None, **export_kwargs):
        """Writes a .tflite file through `keras_mobile.tflite.export` and returns its report
        (`TFLiteReport`; the file is `report.path`).

        With postprocess_op the graph ends in the TFLite_Detection_PostProcess custom op
        (outputs boxes, classes, scores, count; float32, computed on the CPU) with the same
        decoding and NMS as `predict_detections`; otherwise the outputs are the raw head outputs
        (box codes, class logits).

        Args:
            quantization, representative_data: as in `export` ("float32", "float16",
                "dynamic", "int8"; int8 has a uint8 image input by default).
            metadata, labels: object-detector metadata for MediaPipe Tasks (True or a dict of
                `add_metadata` arguments; labels: class names). Needs postprocess_op.
            **export_kwargs: any other `export` argument (input_dtype, output_dtype,
                num_calibration_steps, target="edgetpu", progress).
        """
        from keras_mobile.heads.tflite_export import DetectionPostProcess, export_head
        boxes, classes = self.output["boxes"], self.output["classes"]
        if not postprocess_op:
            return export_head(self, [boxes, classes], path, "detector", metadata, labels,
                               quantization=quantization, representative_data=representative_data,
                               **export_kwargs)
        # the op's outputs (boxes, class ids, scores, count) are float32 on every target, Edge TPU
        # included (as in Coral's detectors): quantizing class ids and counts would blur them
        output_dtype = export_kwargs.pop("output_dtype", None)
        if output_dtype not in (None, "float32"):
            raise ValueError("the TFLite_Detection_PostProcess outputs are float32; output_dtype="
                             f"{output_dtype!r} needs postprocess_op=False")
        post = DetectionPostProcess(self.anchors, self.num_classes, max_detections, score_threshold,
                                    iou_threshold, name="postprocess")
        return export_head(self, list(post(boxes, classes)), path, "detector", metadata, labels,
                           allow_custom_ops=True, quantization=quantization,
                           representative_data=representative_data, output_dtype="float32",
                           **export_kwargs)


def SSDLite(backbone="MobileNetV4ConvS", num_classes=80, input_shape=(320, 320, 3),
            backbone_weights=None, levels=None, extra_channels=(512, 256, 256, 128),
            min_feature_size=1, head_width=None, aspect_ratios=(1.0, 2.0, 0.5), scales=None,
            min_scale=0.2, max_scale=0.95, class_loss="focal", box_loss="smooth_l1", name=None, **backbone_kwargs):
    """SSDLite detector on a keras_mobile backbone.

    Args:
        backbone: constructor name or a built include_top=False model.
        levels: backbone maps to predict on; default ("P4_expanded", "P5") as in the
            MobileNetV3 paper (for families without an expansion tap this is "P4").
        extra_channels: output widths of the extra layers (1x1 conv -> 3x3 depthwise s2 ->
            1x1 conv each) appended after the last map; stops when the map would shrink below
            `min_feature_size`.
        scales / min_scale, max_scale: anchor scale per map (fraction of the image side);
            default linear from min_scale to max_scale as in SSD.
        class_loss: "focal" or "hard_negative"; box_loss: "smooth_l1" or "giou".
    Inputs are raw [0, 255] pixels (the backbone's preprocessing is built in).
    """
    losses.check_loss_names(class_loss, box_loss)
    levels = levels or ("P4_expanded", "P5")
    feats = feature_extractor(backbone, levels=levels, weights=backbone_weights,
                              input_shape=input_shape, **backbone_kwargs)
    inputs = feats.inputs[0]
    fout = feats(inputs)
    maps = [fout[lv] for lv in levels]
    x = maps[-1]
    for i, c in enumerate(extra_channels):
        if x.shape[1] is not None and (x.shape[1] + 1) // 2 < min_feature_size:
            break
        if x.shape[1] is not None and x.shape[1] <= 1:
            break
        name = to_layer_name(f"ssd.extra.{i}")
        x = _conv_bn_relu6(x, c // 2, 1, 1, child(name, "reduce"))
        x = _conv_bn_relu6(x, None, 3, 2, child(name, "dw"), depthwise=True)
        x = _conv_bn_relu6(x, c, 1, 1, child(name, "expand"))
        maps.append(x)
    sizes = [(int(m.shape[1]), int(m.shape[2])) for m in maps]
    if scales is None:
        scales = anchor_lib.ssd_scales(len(sizes), min_scale, max_scale)
    anchors = anchor_lib.generate_anchors(sizes, scales, aspect_ratios)
    a = anchor_lib.anchors_per_location(aspect_ratios)
    prior = float(-np.log((1 - 0.01) / 0.01))
    box_outs, cls_outs = [], []
    for i, m in enumerate(maps):
        if head_width:
            m = _conv_bn_relu6(m, head_width, 1, 1, to_layer_name(f"ssd.head.{i}.proj"))
        b = _predictor(m, a * 4, to_layer_name(f"ssd.box.{i}"))
        c = _predictor(m, a * num_classes, to_layer_name(f"ssd.cls.{i}"),
                       bias_init=keras.initializers.Constant(prior))
        box_outs.append(keras.layers.Reshape((-1, 4), name=to_layer_name(f"ssd.box.{i}.flat"))(b))
        cls_outs.append(keras.layers.Reshape((-1, num_classes), name=to_layer_name(f"ssd.cls.{i}.flat"))(c))
    boxes = _concat_rows(box_outs, "boxes")
    classes = _concat_rows(cls_outs, "classes")
    return SSDLiteModel(inputs, {"boxes": boxes, "classes": classes}, anchors=anchors,
                        num_classes=num_classes, class_loss=class_loss, box_loss=box_loss,
                        name=name or f"ssdlite_{feats.name.replace('_features', '')}")

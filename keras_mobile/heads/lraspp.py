"""LR-ASPP segmentation head (MobileNetV3 paper, Searching for MobileNetV3, Fig. 10)."""
import keras
import numpy as np
import tensorflow as tf

from keras_mobile.applications.features import feature_extractor, pyramid_outputs
from keras_mobile.layers.naming import to_layer_name


class LRASPPModel(keras.Model):
    """Functional LR-ASPP; `compute_loss` is sparse CE on logits with label `ignore_index`
    (255) excluded. fit() on (images, masks [B, H, W] int)."""

    def __init__(self, *args, num_classes=None, ignore_index=255, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = tf.cast(y, tf.int32)
        if len(y.shape) == 4:
            y = y[..., 0]
        valid = tf.not_equal(y, self.ignore_index)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.where(valid, y, 0), logits=tf.cast(y_pred, tf.float32))
        w = tf.cast(valid, tf.float32)
        loss = tf.reduce_sum(ce * w) / tf.maximum(tf.reduce_sum(w), 1.0)
        if self.losses:
            loss = loss + tf.add_n(self.losses)
        return loss

    def predict_masks(self, images, batch_size=8):
        out = []
        for i in range(0, len(images), batch_size):
            out.append(np.argmax(self(tf.convert_to_tensor(images[i:i + batch_size]),
                                      training=False).numpy(), -1))
        return np.concatenate(out)

    def export_tflite(self, path, quantization=None, representative_data=None, metadata=None,
                      labels=None, **export_kwargs):
        """Writes a .tflite of the logits through `keras_mobile.tflite.export` and returns its
        report (`TFLiteReport`; the file is `report.path`).

        Args:
            quantization, representative_data: as in `export` ("float32", "float16",
                "dynamic", "int8"; int8 has a uint8 image input by default).
            metadata, labels: segmenter metadata for MediaPipe Tasks (True or a dict of
                `add_metadata` arguments; softmax over the logits; labels: class names).
            **export_kwargs: any other `export` argument (input_dtype, output_dtype,
                num_calibration_steps, target="edgetpu", progress).
        """
        from keras_mobile.heads.tflite_export import export_head
        return export_head(self, self.outputs[0], path, "segmenter", metadata, labels,
                           quantization=quantization, representative_data=representative_data,
                           **export_kwargs)


def LRASPP(backbone="MobileNetV3Large", num_classes=21, input_shape=(512, 512, 3),
           backbone_weights=None, output_stride=None, inter_channels=128, name=None,
           **backbone_kwargs):
    """LR-ASPP on a keras_mobile backbone.

    The high-level features (the atrous last stage at 1/16 with output_stride=16; the 1/32 map
    with output_stride=32) go through 1x1 conv + BN + ReLU gated by a global-pool 1x1 conv +
    sigmoid, are bilinearly upsampled to 1/8 and classified by a 1x1 conv; the 1/8 skip gets
    its own 1x1 classifier; the sum is upsampled to the input size. Output: logits
    [B, H, W, classes]. Inputs are raw [0, 255] pixels.

    output_stride: 16, 32, or None (default) for the backbone's best supported stride: 16
    where its family can make the last stage atrous (MobileNetV3/V4, MobileOne), else 32
    (EfficientFormer). For a built backbone model the stride it was built with is used.
    """
    if output_stride not in (None, 16, 32):
        raise ValueError(f"output_stride must be None, 16 or 32, got {output_stride!r}")
    if isinstance(backbone, keras.Model):
        high_level = {16: "P4", 32: "P5"}.get(output_stride) or (
            "P5" if "P5" in pyramid_outputs(backbone) else "P4")
        feats = feature_extractor(backbone, levels=("P3", high_level))
    else:
        strides = (16, 32) if output_stride is None else (output_stride,)
        for i, stride in enumerate(strides):
            high_level = "P4" if stride == 16 else "P5"
            try:
                feats = feature_extractor(backbone, levels=("P3", high_level), weights=backbone_weights,
                                          input_shape=input_shape, output_stride=stride,
                                          **backbone_kwargs)
                break
            except ValueError as e:        # a family without an atrous variant refuses 16
                if i + 1 == len(strides) or "output_stride" not in str(e):
                    raise
    inputs = feats.inputs[0]
    f = feats(inputs)
    low, high = f["P3"], f[high_level]
    x = keras.layers.Conv2D(inter_channels, 1, use_bias=False, name=to_layer_name("lraspp.cbr.conv"))(high)
    x = keras.layers.BatchNormalization(name=to_layer_name("lraspp.cbr.bn"))(x)
    x = keras.layers.ReLU(name=to_layer_name("lraspp.cbr.act"))(x)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=to_layer_name("lraspp.scale.pool"))(high)
    s = keras.layers.Conv2D(inter_channels, 1, use_bias=False, name=to_layer_name("lraspp.scale.conv"))(s)
    s = keras.layers.Activation("sigmoid", name=to_layer_name("lraspp.scale.sigmoid"))(s)
    x = keras.layers.Multiply(name=to_layer_name("lraspp.gate"))([x, s])
    x = keras.layers.Resizing(int(low.shape[1]), int(low.shape[2]), interpolation="bilinear",
                              name=to_layer_name("lraspp.up_high"))(x)
    x = keras.layers.Conv2D(num_classes, 1, name=to_layer_name("lraspp.high_classifier"))(x)
    y = keras.layers.Conv2D(num_classes, 1, name=to_layer_name("lraspp.low_classifier"))(low)
    x = keras.layers.Add(name=to_layer_name("lraspp.sum"))([x, y])
    x = keras.layers.Resizing(int(inputs.shape[1]), int(inputs.shape[2]), interpolation="bilinear",
                              name=to_layer_name("lraspp.up_out"))(x)
    return LRASPPModel(inputs, x, num_classes=num_classes,
                       name=name or f"lraspp_{feats.name.replace('_features', '')}")

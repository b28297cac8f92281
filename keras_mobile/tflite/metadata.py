"""TFLite metadata (the `TFLITE_METADATA` buffer + packed label files) for Android tooling
(MediaPipe Tasks, TFLite Task Library), without tflite-support or mediapipe at run time.

Writing lives in `metadata_write` (add_metadata: how and why), reading in `metadata_read`, the
shared format in `metadata_format`; this module keeps the public names in one place.
"""
from keras_mobile.tflite.metadata_format import (  # noqa: F401
    ACTIVATIONS, DETECTOR_OUTPUTS, KINDS, LABELS_FILE, METADATA_NAME, SEGMENTER_METADATA_NAME)
from keras_mobile.tflite.metadata_read import read_metadata, to_json  # noqa: F401
from keras_mobile.tflite.metadata_write import (  # noqa: F401
    add_metadata, imagenet_labels, infer_kind, min_parser_version, model_defaults)

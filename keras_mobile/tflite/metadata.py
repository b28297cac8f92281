"""TFLite metadata (the `TFLITE_METADATA` buffer + packed label files) for Android tooling.

MediaPipe Tasks (ImageClassifier / ObjectDetector / ImageSegmenter) and the TFLite Task Library
read a `tflite.ModelMetadata` flatbuffer stored as a model buffer named "TFLITE_METADATA", and
label files stored as an uncompressed zip appended to the .tflite file. This module writes
both the way tflite-support's MetadataPopulator does, with the schema vendored as Python
(`_metadata_schema_py_generated.py`), so neither tflite-support (which breaks TF 2.21) nor
mediapipe is needed at run time.

Input normalisation: a float32 input is fed by MediaPipe as (pixel - mean) / std, so for
keras_mobile models (raw [0, 255] pixels in, normalisation inside the model) mean=0, std=1. A
uint8 input gets the raw pixels; the exporter pins its quantization to scale 1, zero point 0
so that the pixel value *is* the real value.

Writing lives in `metadata_write`, reading in `metadata_read`, the shared format in
`metadata_format`; this module keeps the public names in one place.
"""
from keras_mobile.tflite.metadata_format import (  # noqa: F401
    ACTIVATIONS, DETECTOR_OUTPUTS, KINDS, LABELS_FILE, METADATA_NAME, SEGMENTER_METADATA_NAME)
from keras_mobile.tflite.metadata_read import read_metadata, to_json  # noqa: F401
from keras_mobile.tflite.metadata_write import (  # noqa: F401
    add_metadata, imagenet_labels, infer_kind, min_parser_version, model_defaults)

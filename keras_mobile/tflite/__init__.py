"""TFLite deployment: export (float32/float16/dynamic/int8, target="edgetpu"), Android metadata,
inspection, LiteRT runner, EdgeTPU compile/analysis."""
from keras_mobile.tflite import edgetpu, metadata
from keras_mobile.tflite.export import export
from keras_mobile.tflite.inspect import TFLiteReport, inspect, run_tflite
from keras_mobile.tflite.metadata import add_metadata, read_metadata
from keras_mobile.tflite.qat import quantize_model

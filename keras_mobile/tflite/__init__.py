"""TFLite deployment: export (float32/float16/dynamic/int8), inspection, LiteRT runner."""
from keras_mobile.tflite.export import export
from keras_mobile.tflite.inspect import TFLiteReport, inspect, run_tflite
from keras_mobile.tflite.qat import quantize_model

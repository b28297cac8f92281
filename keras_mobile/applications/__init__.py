from keras_mobile.applications.imagenet_utils import decode_predictions, normalize_input, preprocess_input
from keras_mobile.applications.mobilenetv3 import MobileNetV3Large, MobileNetV3Small
from keras_mobile.applications.mobilenetv4 import (MobileNetV4ConvL, MobileNetV4ConvM, MobileNetV4ConvS,
                                                   MobileNetV4HybridL, MobileNetV4HybridM)
from keras_mobile.applications.mobileone import MobileOneS0, MobileOneS1, MobileOneS2, MobileOneS3, MobileOneS4
from keras_mobile.applications.efficientformer import EfficientFormerL1, EfficientFormerL3, EfficientFormerL7
from keras_mobile.applications.registry import get_model, list_models  # noqa: E402,F401  (after the families register)

"""Detection and segmentation heads on keras_mobile backbones (TensorFlow backend)."""
from keras_mobile.heads.lraspp import LRASPP, LRASPPModel
from keras_mobile.heads.ssdlite import SSDLite, SSDLiteModel

"""keras_mobile: modern mobile vision networks for Keras 3."""
__version__ = "0.1.0"
from keras_mobile import _triton_import  # noqa: E402

_triton_import.install()   # timm / torchvision import after keras_mobile without a segfault
from keras_mobile.applications import *  # noqa: F401,F403
from keras_mobile.reparameterize import reparameterize  # noqa: E402,F401

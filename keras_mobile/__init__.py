"""keras_mobile: modern mobile vision networks for Keras 3."""
__version__ = "0.1.0"
import os as _os

# TensorFlow reads this once, when it loads: its C++ INFO/WARNING lines (CPU features, every
# converter step) are noise around this package's reports. A value the user set wins
# (TF_CPP_MIN_LOG_LEVEL=0 shows everything; `keras-mobile --verbose` does that).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from keras_mobile import _triton_import  # noqa: E402

_triton_import.install()   # timm / torchvision import after keras_mobile without a segfault
from keras_mobile.applications import *  # noqa: F401,F403
from keras_mobile.reparameterize import reparameterize  # noqa: E402,F401

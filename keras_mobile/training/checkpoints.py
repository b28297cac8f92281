"""Fine-tuned weights as a timm-layout `.safetensors` file: kept as an import path; the code lives
with its inverse in `keras_mobile.weights.timm_checkpoint`."""
from keras_mobile.weights.timm_checkpoint import save_timm_checkpoint, timm_state_dict  # noqa: F401

"""Cost analysis: per-layer profile, roofline latency model, hardware presets."""
from keras_mobile.analysis.hardware import PRESETS, Hardware, measure_host
from keras_mobile.analysis.profile import LayerCost, Profile, profile
from keras_mobile.analysis.roofline import Roofline, plot_ridge_sweep, ridge_sweep, roofline

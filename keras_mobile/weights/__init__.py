from keras_mobile.weights.errors import WeightsError
from keras_mobile.weights.loader import load_weights

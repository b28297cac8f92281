"""Stochastic depth (drop path): drops a residual branch per sample during training."""
import keras
from keras_mobile.layers.naming import child


@keras.saving.register_keras_serializable(package="keras_mobile")
class StochasticDepth(keras.layers.Layer):
    identity_at_inference = True    # export / QAT treat it as a pass-through

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype) < keep
        return x * keras.ops.cast(mask, x.dtype) / keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def residual_add(x, shortcut, drop_path_rate=0.0, name=None):
    """shortcut + (optionally drop-pathed) x."""
    if drop_path_rate:
        x = StochasticDepth(drop_path_rate, name=child(name, "drop_path"))(x)
    return keras.layers.Add(name=child(name, "add"))([shortcut, x])

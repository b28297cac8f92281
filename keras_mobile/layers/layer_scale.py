"""LayerScale: a learned per-channel gain on a residual branch (CaiT; timm LayerScale/LayerScale2d).

Channels-last, so one layer serves both 4D feature maps and 3D token sequences.
"""
import keras


@keras.saving.register_keras_serializable(package="keras_mobile")
class LayerScale(keras.layers.Layer):
    def __init__(self, init_value=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma", shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value))

    def call(self, x):
        return x * keras.ops.cast(self.gamma, x.dtype)

    def channel_scale(self):
        """The per-channel factor (numpy): QAT writes a LayerScale as an exact 1x1 depthwise conv."""
        return keras.ops.convert_to_numpy(self.gamma)

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}

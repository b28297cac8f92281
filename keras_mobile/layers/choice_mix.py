"""ChoiceMix: a supernet row's output as a weighted sum of its candidate blocks' outputs.

The weights are a Gumbel-softmax sample over learnable architecture logits (Jang et al., 2017;
EfficientFormer's supernet): in training, softmax((logits + Gumbel noise) / temperature), so the
gradient reaches both the candidates and the logits; at inference, the one-hot of the most
likely candidate still allowed, so the supernet computes exactly the sub-network it would pick.
`alive` (0/1 per candidate, not trained) removes candidates a slimming step dropped.
"""
import keras

NEG = -1e9     # logit of a dropped candidate


@keras.saving.register_keras_serializable(package="keras_mobile")
class ChoiceMix(keras.layers.Layer):
    """Mixes `num_choices` same-shaped inputs.

    Args:
        num_choices: candidates (inputs) per call.
        temperature: initial Gumbel-softmax temperature (annealed by `set_temperature`).
        logit_scale: the logits are `logit_scale * variable`, so Adam moves them that much
            faster than the network's weights (the architecture needs a larger learning rate
            than the weights, as in DARTS/EfficientFormer, and one optimizer serves both).
        seed: of the Gumbel noise.
    """

    def __init__(self, num_choices, temperature=1.0, logit_scale=10.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_choices) < 1:
            raise ValueError(f"ChoiceMix needs at least one choice, got num_choices={num_choices!r}")
        self.num_choices = int(num_choices)
        self.initial_temperature = float(temperature)
        self.logit_scale = float(logit_scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        n = self.num_choices
        self.logits = self.add_weight(name="logits", shape=(n,), initializer="zeros")
        self.alive = self.add_weight(name="alive", shape=(n,), initializer="ones", trainable=False)
        self.temperature = self.add_weight(name="temperature", shape=(),
                                           initializer=keras.initializers.Constant(self.initial_temperature),
                                           trainable=False)

    def scores(self):
        """Architecture logits of the candidates, dropped ones at NEG."""
        ops = keras.ops
        return ops.where(self.alive > 0.5, self.logits * self.logit_scale, NEG)

    def mix_weights(self, training=False):
        ops = keras.ops
        s = self.scores()
        if not training:
            return ops.one_hot(ops.argmax(s), self.num_choices)
        u = keras.random.uniform((self.num_choices,), 1e-6, 1.0 - 1e-6, seed=self.seed_generator)
        gumbel = -ops.log(-ops.log(u))
        return ops.softmax((s + gumbel) / self.temperature)

    def call(self, inputs, training=False):
        if len(inputs) != self.num_choices:
            raise ValueError(f"{self.name}: expected {self.num_choices} inputs, got {len(inputs)}")
        w = keras.ops.cast(self.mix_weights(training), inputs[0].dtype)
        out = inputs[0] * w[0]
        for k in range(1, self.num_choices):
            out = out + inputs[k] * w[k]
        return out

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def probabilities(self):
        """Softmax of the logits over the candidates still allowed (numpy): their importance."""
        return keras.ops.convert_to_numpy(keras.ops.softmax(self.scores()))

    def set_temperature(self, t):
        self.temperature.assign(float(t))

    def set_alive(self, mask):
        self.alive.assign(keras.ops.cast(keras.ops.convert_to_tensor(mask), "float32"))

    def get_config(self):
        return {**super().get_config(), "num_choices": self.num_choices,
                "temperature": self.initial_temperature, "logit_scale": self.logit_scale, "seed": self.seed}

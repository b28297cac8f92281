"""Fake-quantization layers for native Keras 3 quantization-aware training.

Every layer here computes in float but rounds its weights and/or outputs to the int8 grid that
TFLite will use, through `keras.quantizers.fake_quant_with_min_max_vars`. On the TensorFlow
backend that op lowers to TF `FakeQuantWithMinMaxVars[PerChannel]`, which the TFLite converter
turns into int8 tensors with exactly these scales, so the exported file computes what the
Keras model computed (to int32-bias/requantisation rounding).

Conventions follow TFLite's int8 scheme: weights symmetric per output channel on [-127, 127]
(`narrow_range`), activations asymmetric per tensor on [-128, 127] with a range tracked by an
exponential moving average during training.
"""
import weakref

import keras
from keras import ops

from keras_mobile import graph

L = keras.layers
# layers whose int8 output keeps its input's scale (TFLite requires it, or it is free)
SCALE_PRESERVING = (L.ZeroPadding2D, L.ZeroPadding1D, L.Cropping2D, L.Flatten, L.Reshape, L.Permute,
                    L.Dropout, L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout,
                    L.ActivityRegularization, L.Identity, L.MaxPooling2D, L.MaxPooling1D,
                    L.GlobalMaxPooling2D, L.GlobalMaxPooling1D, L.UpSampling2D)


def preserves_scale(layer):
    """A layout op of SCALE_PRESERVING, or a layer that declares `identity_at_inference = True`
    (e.g. StochasticDepth): its int8 output keeps its input's scale."""
    return isinstance(layer, SCALE_PRESERVING) or getattr(layer, "identity_at_inference", False) is True

# TFLite requires these exact output scales for its int8 LOGISTIC/SOFTMAX/TANH kernels; using the
# same ranges in Keras keeps the converter from adding a requantise step and the outputs equal.
FIXED_RANGES = {
    "sigmoid": (0.0, 255.0 / 256.0),
    "softmax": (0.0, 255.0 / 256.0),
    "tanh": (-1.0, 127.0 / 128.0),
}
_MIN_RANGE = 1e-4   # a dead (all-zero) activation still needs a non-empty range


def fake_quant_symmetric(w, axis=None):
    """Symmetric narrow-range int8 fake quantisation of weights: per channel along `axis`, or per
    tensor when `axis` is None. The range follows the weights (no gradient through it).
    Returns (quantised weights, scale: max|w| / 127 per channel or per tensor)."""
    if axis is None:
        m = ops.max(ops.abs(w))
    else:
        axis = axis % len(w.shape)
        m = ops.max(ops.abs(w), axis=[a for a in range(len(w.shape)) if a != axis])
    m = ops.stop_gradient(ops.maximum(m, 1e-8))
    q = keras.quantizers.fake_quant_with_min_max_vars(w, -m, m, num_bits=8, narrow_range=True, axis=axis)
    return q, m / 127.0


def _round_half_away(v):
    return ops.sign(v) * ops.floor(ops.abs(v) + 0.5)


def _on_grid(lo, hi):
    """[lo, hi] moved (same width) so that 0 is exactly a grid point. FakeQuant would nudge it
    anyway, but in float32 a zero point of x.5 (e.g. the range [-1, 1]) can round differently
    from the converter's double-precision nudge; a range already on the grid cannot."""
    scale = ops.maximum(hi - lo, _MIN_RANGE) / 255.0
    zero_point = ops.clip(_round_half_away(-lo / scale), 0.0, 255.0)
    lo = -zero_point * scale
    return lo, lo + 255.0 * scale


class _BiasQuantMixin:
    """TFLite stores a conv/FC bias as int32 on the grid input_scale * weight_scale. Rounding the
    float bias to that grid here removes the largest source of Keras/TFLite mismatch (a bias
    off by a fraction of a step shifts every output of the channel). The input scale comes from
    the ActivationQuantizer feeding the layer, found through the graph when the layer is called
    on a symbolic tensor (so it is re-linked when a saved model is loaded)."""

    def __call__(self, *args, **kwargs):
        x = args[0] if args else None
        aq = _upstream_quantizer(x)
        if aq is not None:
            self._input_quantizer = weakref.ref(aq)   # a weak ref: not tracked as a sublayer
        return super().__call__(*args, **kwargs)

    def _quantize_bias(self, bias, weight_scale):
        ref = getattr(self, "_input_quantizer", None)
        aq = ref() if ref is not None else None
        if aq is None:
            return bias
        grid = aq.scale() * weight_scale
        return bias + ops.stop_gradient(_round_half_away(bias / grid) * grid - bias)


def _upstream_quantizer(x):
    """The ActivationQuantizer whose output reaches symbolic tensor `x` through scale-preserving
    layers, or None."""
    for _ in range(16):
        made = graph.producer(x)
        if made is None:
            return None
        op, node = made
        if isinstance(op, ActivationQuantizer):
            return op
        if not preserves_scale(op):
            return None
        if len(node.input_tensors) != 1:
            return None
        x = node.input_tensors[0]
    return None


@keras.saving.register_keras_serializable(package="keras_mobile")
class ActivationQuantizer(keras.layers.Layer):
    """Per-tensor int8 fake quantisation of activations.

    The range [min, max] is either fixed (`fixed_range`, e.g. a sigmoid's [0, 255/256]) or
    learned from the data: the first training batch sets it, later batches move it by an
    exponential moving average (`ema_decay`); it always contains 0 so that zero (padding, ReLU)
    is exact. Outside training the stored range is used unchanged.
    """

    def __init__(self, ema_decay=0.99, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        if fixed_range is not None:
            lo, hi = (float(v) for v in fixed_range)
            if not lo <= 0.0 <= hi or hi - lo <= 0:
                raise ValueError(f"fixed_range must contain 0 and be non-empty, got {fixed_range}")
            fixed_range = (lo, hi)
        self.ema_decay = float(ema_decay)
        self.fixed_range = fixed_range
        self.calibrating = False        # set by `calibrate`: record min/max, pass values through
        self.supports_masking = True

    def build(self, input_shape):
        lo, hi = self.fixed_range or (-6.0, 6.0)
        self.min_value = self.add_weight(name="min", shape=(), trainable=False,
                                         initializer=keras.initializers.Constant(lo))
        self.max_value = self.add_weight(name="max", shape=(), trainable=False,
                                         initializer=keras.initializers.Constant(hi))
        self.initialized = self.add_weight(name="initialized", shape=(), trainable=False,
                                           initializer="zeros")

    def _observe(self, x, ema):
        x = ops.stop_gradient(ops.cast(x, "float32"))
        lo = ops.minimum(ops.min(x), 0.0)
        hi = ops.maximum(ops.max(x), 0.0)
        seen = self.initialized > 0
        if ema:
            d = self.ema_decay
            new_lo = ops.where(seen, self.min_value * d + lo * (1 - d), lo)
            new_hi = ops.where(seen, self.max_value * d + hi * (1 - d), hi)
        else:
            new_lo = ops.where(seen, ops.minimum(self.min_value, lo), lo)
            new_hi = ops.where(seen, ops.maximum(self.max_value, hi), hi)
        self.min_value.assign(new_lo)
        self.max_value.assign(new_hi)
        self.initialized.assign(1.0)
        return new_lo, new_hi

    def scale(self):
        """The int8 step of this tensor: (max - min) / 255."""
        if self.fixed_range is not None:
            lo, hi = self.fixed_range
            return (hi - lo) / 255.0
        return ops.maximum(self.max_value - self.min_value, _MIN_RANGE) / 255.0

    def call(self, x, training=None):
        if self.fixed_range is not None:
            lo, hi = self.fixed_range
        elif self.calibrating:
            self._observe(x, ema=False)
            return x
        elif training:
            lo, hi = self._observe(x, ema=True)
        else:
            lo, hi = self.min_value, self.max_value
        lo, hi = _on_grid(lo, hi)
        return keras.quantizers.fake_quant_with_min_max_vars(x, lo, hi, num_bits=8)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ema_decay": self.ema_decay,
                "fixed_range": None if self.fixed_range is None else list(self.fixed_range)}


def _pair(v):
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)


@keras.saving.register_keras_serializable(package="keras_mobile")
class QuantConv(_BiasQuantMixin, keras.layers.Layer):
    """Conv2D or DepthwiseConv2D, optionally with a BatchNormalization folded in, whose (folded)
    kernel is fake-quantised per output channel (symmetric int8, narrow range).

    With `batch_norm=True` the layer holds the BN variables (gamma, beta, moving_mean,
    moving_variance) and computes, outside training, exactly the folded conv TFLite runs:
    ``conv(x, Q(kernel * s)) + (beta - moving_mean * s)`` with ``s = gamma / sqrt(var + eps)``.
    In training (unless `freeze_bn`) it follows the single-conv scheme of PyTorch's QAT ConvBn:
    the quantised folded conv is divided back by ``s`` and batch-normalised with the batch
    statistics, which also update the moving statistics; so BN keeps learning while the
    weights already see their quantisation error.
    """

    def __init__(self, filters=None, kernel_size=1, strides=1, padding="valid", dilation_rate=1,
                 depthwise=False, depth_multiplier=1, use_bias=False, batch_norm=False,
                 bn_epsilon=1e-3, bn_momentum=0.99, freeze_bn=False, **kwargs):
        super().__init__(**kwargs)
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.filters = None if filters is None else int(filters)
        self.kernel_size, self.strides = _pair(kernel_size), _pair(strides)
        self.dilation_rate = _pair(dilation_rate)
        self.padding, self.depthwise = padding, bool(depthwise)
        self.depth_multiplier, self.use_bias = int(depth_multiplier), bool(use_bias)
        self.batch_norm, self.freeze_bn = bool(batch_norm), bool(freeze_bn)
        self.bn_epsilon, self.bn_momentum = float(bn_epsilon), float(bn_momentum)
        if not self.depthwise and self.filters is None:
            raise ValueError("QuantConv needs `filters` unless depthwise=True")

    def build(self, input_shape):
        in_ch = int(input_shape[-1])
        kh, kw = self.kernel_size
        if self.depthwise:
            self.out_channels = in_ch * self.depth_multiplier
            shape = (kh, kw, in_ch, self.depth_multiplier)
        else:
            self.out_channels = self.filters
            shape = (kh, kw, in_ch, self.filters)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.out_channels,), initializer="zeros") \
            if self.use_bias else None
        if self.batch_norm:
            c = (self.out_channels,)
            self.gamma = self.add_weight(name="gamma", shape=c, initializer="ones")
            self.beta = self.add_weight(name="beta", shape=c, initializer="zeros")
            self.moving_mean = self.add_weight(name="moving_mean", shape=c, initializer="zeros",
                                               trainable=False)
            self.moving_variance = self.add_weight(name="moving_variance", shape=c,
                                                   initializer="ones", trainable=False)

    def _scaled(self, kernel, per_channel):
        if self.depthwise:   # (kh, kw, C, M): output channel c * M + m
            return kernel * ops.reshape(per_channel, (1, 1, -1, self.depth_multiplier))
        return kernel * per_channel

    def quantized_kernel(self, kernel):
        """Per-output-channel fake quantisation -> (kernel, per-channel scale). A depthwise kernel
        is viewed as TFLite stores it ([kh, kw, 1, C*M], channel last) so that the converter keeps
        the per-channel scales."""
        if not self.depthwise:
            return fake_quant_symmetric(kernel, axis=-1)
        kh, kw, c, m = kernel.shape
        q, scale = fake_quant_symmetric(ops.reshape(kernel, (kh, kw, 1, c * m)), axis=-1)
        return ops.reshape(q, (kh, kw, c, m)), scale

    def _conv(self, x, kernel):
        if self.depthwise:
            return ops.depthwise_conv(x, kernel, strides=self.strides, padding=self.padding,
                                      dilation_rate=self.dilation_rate)
        return ops.conv(x, kernel, strides=self.strides, padding=self.padding,
                        dilation_rate=self.dilation_rate)

    def fold_scale(self):
        """gamma / sqrt(moving_variance + eps): the per-channel factor BN folds into the kernel."""
        return self.gamma * ops.rsqrt(self.moving_variance + self.bn_epsilon)

    def call(self, x, training=None):
        if not self.batch_norm:
            kernel, w_scale = self.quantized_kernel(self.kernel)
            y = self._conv(x, kernel)
            return y + self._quantize_bias(self.bias, w_scale) if self.use_bias else y
        s = self.fold_scale()
        kernel, w_scale = self.quantized_kernel(self._scaled(self.kernel, s))
        y = self._conv(x, kernel)
        if training and not self.freeze_bn and self.trainable:
            safe = ops.where(ops.abs(s) < 1e-12, 1e-12, s)
            y = y / safe
            if self.use_bias:
                y = y + self.bias
            mean, var = ops.moments(y, axes=[0, 1, 2])
            m = self.bn_momentum
            self.moving_mean.assign(self.moving_mean * m + ops.stop_gradient(mean) * (1 - m))
            self.moving_variance.assign(self.moving_variance * m + ops.stop_gradient(var) * (1 - m))
            return (y - mean) * (self.gamma * ops.rsqrt(var + self.bn_epsilon)) + self.beta
        bias = self.beta - self.moving_mean * s
        if self.use_bias:
            bias = bias + self.bias * s
        return y + self._quantize_bias(bias, w_scale)

    def folded_weights(self):
        """(kernel, bias) of the plain float conv this layer computes outside training (before
        weight quantisation)."""
        if not self.batch_norm:
            bias = self.bias if self.use_bias else ops.zeros((self.out_channels,))
            return ops.convert_to_numpy(self.kernel), ops.convert_to_numpy(bias)
        s = self.fold_scale()
        bias = self.beta - self.moving_mean * s + (self.bias * s if self.use_bias else 0.0)
        return (ops.convert_to_numpy(self._scaled(self.kernel, s)), ops.convert_to_numpy(bias))

    def compute_output_shape(self, input_shape):
        def size(d, k, s, r):
            if d is None:
                return None
            k = (k - 1) * r + 1
            return (d + s - 1) // s if self.padding == "same" else (d - k) // s + 1
        out = self.filters if not self.depthwise else input_shape[-1] * self.depth_multiplier
        return (input_shape[0],
                size(input_shape[1], self.kernel_size[0], self.strides[0], self.dilation_rate[0]),
                size(input_shape[2], self.kernel_size[1], self.strides[1], self.dilation_rate[1]), out)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "dilation_rate": self.dilation_rate, "depthwise": self.depthwise,
                "depth_multiplier": self.depth_multiplier, "use_bias": self.use_bias,
                "batch_norm": self.batch_norm, "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum, "freeze_bn": self.freeze_bn}


@keras.saving.register_keras_serializable(package="keras_mobile")
class QuantDense(_BiasQuantMixin, keras.layers.Layer):
    """Dense (no activation) with its kernel fake-quantised per tensor (symmetric int8, narrow
    range), as TFLite's FULLY_CONNECTED stores it."""

    def __init__(self, units, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.use_bias = int(units), bool(use_bias)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]), self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros") \
            if self.use_bias else None

    def call(self, x, training=None):
        kernel, w_scale = fake_quant_symmetric(self.kernel)
        y = ops.matmul(x, kernel)
        return y + self._quantize_bias(self.bias, w_scale) if self.use_bias else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="keras_mobile")
class QuantHardSigmoid(keras.layers.Layer):
    """hard_sigmoid = relu6(x + 3) / 6 with relu6's output fake-quantised on [0, 6].

    TFLite folds the +3 into the producing conv's bias and fuses relu6 into it; the rounding
    point here makes the remaining /6 an int8 MUL (without it the converter leaves it float).
    """

    def call(self, x):
        t = keras.quantizers.fake_quant_with_min_max_vars(ops.relu6(x + 3.0), 0.0, 6.0, num_bits=8)
        return t * (1.0 / 6.0)

    def compute_output_shape(self, input_shape):
        return input_shape


QAT_LAYERS = (ActivationQuantizer, QuantConv, QuantDense, QuantHardSigmoid)


def is_qat_model(model):
    """True when `model` (or a model nested in it) holds fake-quantisation layers."""
    return isinstance(model, keras.Model) and any(isinstance(layer, QAT_LAYERS)
                                                   for layer in graph.leaf_layers(model))

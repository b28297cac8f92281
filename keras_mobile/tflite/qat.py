"""Native Keras 3 quantization-aware training: `quantize_model(model)`.

The functional graph is rebuilt node by node (nested functional models are inlined):

* Conv2D / DepthwiseConv2D followed by its only consumer BatchNormalization -> one `QuantConv`
  with the BN folded in (per-channel int8 weights of the folded kernel); lone convs, lone
  4D BatchNormalization, `Rescaling`/`Normalization` preprocessing and 4D `LayerScale` become
  `QuantConv`s too (a per-channel scale is an exactly quantisable 1x1 depthwise conv).
* Dense -> `QuantDense` (per-tensor int8 weights, like TFLite's FULLY_CONNECTED).
* Layers that offer `standard_layers()` (a functional model of plain Keras layers computing the
  same, e.g. a fused MobileOne block: pad + conv + [SE] + ReLU) are inlined as that model and
  rewritten by the rules here; train-time reparameterisable blocks are fused first. A 4D layer
  with `channel_scale()` (LayerScale) is a per-channel scale.
* An `ActivationQuantizer` goes after every tensor TFLite stores in int8: the model input,
  conv/dense outputs, activations, adds, multiplies, pools... but not between a conv and a
  ReLU/ReLU6 (or hard-sigmoid) it fuses, nor after layout ops (padding, reshape, max-pool)
  that keep their input's scale.
* Layers with no int8 form here (attention cores, LayerNormalization, ...) stay float, with a
  warning naming them; their outputs are still quantised so the rest of the graph is int8.

`keras_mobile.tflite.export(qat_model, path, quantization="int8")` then needs no
representative data: the fake-quant ranges are the int8 scales of the file.
"""
import warnings
from collections import defaultdict

import keras
import numpy as np
from keras import tree

from keras_mobile import graph
from keras_mobile.graph import activation_name as _activation_name
from keras_mobile.layers.naming import child
from keras_mobile.tflite.affine_as_depthwise import per_channel_affine
from keras_mobile.tflite.edgetpu_lowering import HARD_SWISH_NAMES
from keras_mobile.tflite.fake_quant import (
    FIXED_RANGES, ActivationQuantizer, QuantConv, QuantDense, QuantHardSigmoid, is_qat_model, preserves_scale)

L = keras.layers
# ops with their own int8 kernels that need an output range
QUANTIZED_AS_IS = (L.Add, L.Subtract, L.Multiply, L.Concatenate, L.Average, L.Maximum, L.Minimum,
                   L.GlobalAveragePooling2D, L.GlobalAveragePooling1D, L.AveragePooling2D,
                   L.AveragePooling1D, L.ReLU, L.Softmax, L.LeakyReLU, L.ELU, L.PReLU, L.Activation)
_RELU_NAMES = ("relu", "relu6")


def quantize_model(model, input_range="auto", freeze_bn=False, ema_decay=0.99,
                   calibration_data=None, calibration_steps=64, batch_size=16, hard_swish="mul"):
    """Returns a trainable quantization-aware copy of `model` (the original is not modified).

    Conv+BatchNorm pairs are folded into single convs whose weights are fake-quantised per
    output channel (symmetric int8, narrow range); activations are fake-quantised per tensor
    with ranges tracked by moving averages during training. Compile and `fit` it like any model
    (a few epochs at a low learning rate from trained float weights is the usual recipe), then
    `keras_mobile.tflite.export(qat_model, path, quantization="int8")` writes a fully integer
    file computing what the Keras model computes.

    Args:
        model: a functional Keras model (keras_mobile models are); nested functional models are
            inlined. MobileOne blocks in train-time form are reparameterised first.
        input_range: range of the model input's fake quantisation. "auto": (0, 255) when the
            input feeds a `Rescaling`/`Normalization` layer (raw pixels: a uint8 input maps
            exactly), else learned like other activations; or a (min, max) pair; or None (learned).
        freeze_bn: True folds BN with its moving statistics in training too (no batch
            statistics; the training graph is then the inference graph). False (default) trains
            with batch statistics, corrected as in PyTorch's QAT ConvBn.
        ema_decay: decay of the activation ranges' moving averages.
        calibration_data: optional representative inputs (array, iterable of batches, tf.data
            dataset or image folder, as for `export`) used to initialise the activation ranges
            before training (recommended); without it the first training batch sets them.
        calibration_steps: number of calibration samples.
        batch_size: batch size for the calibration forward passes.
        hard_swish: "mul" (default) writes hard-swish as x * hard_sigmoid(x) (ADD+RELU6, MUL,
            MUL: integer ops that round like the Keras fake-quant, so the file tracks the QAT
            model to one step; Edge TPU ops; and faster in LiteRT on x86 than the HARD_SWISH
            op, benchmarks/qat_hard_swish.py). "native" keeps one TFLite HARD_SWISH op, whose
            16-bit fixed-point int8 kernel is one step off float on ~1 % of values, so deep
            hard-swish nets drift a few steps from the Keras model.

    Raises:
        ValueError: for a model that is not functional, holds shared layers, is channels-first,
            is already quantization-aware, or for a bad `input_range`.
    """
    if not graph.is_functional(model) or isinstance(model, keras.Sequential):
        raise ValueError(f"quantize_model needs a functional model (keras.Model(inputs, outputs)); "
                         f"{getattr(model, 'name', model)!r} is {type(model).__name__}")
    if is_qat_model(model):
        raise ValueError(f"{model.name} is already quantization-aware (it holds fake-quant layers)")
    if input_range not in ("auto", None):
        try:
            lo, hi = (float(v) for v in input_range)
        except (TypeError, ValueError):
            raise ValueError(f"input_range must be 'auto', None or (min, max), got {input_range!r}")
        if not lo <= 0.0 <= hi or hi <= lo:
            raise ValueError(f"input_range must contain 0 and satisfy min < max, got {input_range!r}")
        input_range = (lo, hi)
    from keras_mobile.reparameterize import needs_reparameterization, reparameterize
    if needs_reparameterization(model):
        model = reparameterize(model)      # QAT trains the deployed (single conv) form
    if hard_swish not in ("native", "mul"):
        raise ValueError(f"hard_swish must be 'native' or 'mul', got {hard_swish!r}")
    rewriter = _Rewriter(freeze_bn=freeze_bn, ema_decay=ema_decay, input_range=input_range,
                         hard_swish_as_mul=hard_swish == "mul")
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=_input_name(t, i))
              for i, t in enumerate(model.inputs)]
    outputs = rewriter.rewrite(model, inputs, top=True)
    qat = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
    rewriter.copy_weights()
    if rewriter.float_layers:
        names = ", ".join(f"{n} ({t})" for n, t in rewriter.float_layers[:12])
        more = len(rewriter.float_layers) - 12
        warnings.warn(f"quantize_model: {len(rewriter.float_layers)} layer(s) have no int8 QAT form and "
                      f"stay float (TFLite runs them in float between QUANTIZE/DEQUANTIZE): {names}"
                      + (f" and {more} more" if more > 0 else ""), stacklevel=2)
    if calibration_data is not None:
        calibrate(qat, calibration_data, calibration_steps, batch_size)
    return qat


def calibrate(qat_model, data, steps=64, batch_size=16, progress=True):
    """Sets every learned activation range of `qat_model` to the min/max its float activations
    reach on `data` (the same forms `export` accepts). Returns the number of samples used."""
    from keras_mobile.progress import progress_bar
    from keras_mobile.tflite import representative
    quantizers = [q for q in graph.all_layers(qat_model)
                  if isinstance(q, ActivationQuantizer) and q.fixed_range is None]
    if not quantizers:
        raise ValueError(f"{qat_model.name} has no activation quantizers; call quantize_model first")
    shape = tuple(qat_model.inputs[0].shape[1:])
    # the checks export runs (shape, empty data, [0, 1] images for a raw-pixel model), before any
    # range is reset: bad data leaves the model as it was
    data = representative.prepare(data, shape, qat_model)
    for q in quantizers:
        q.initialized.assign(0.0)
        q.calibrating = True
    n = 0
    try:
        batch = []
        samples = representative.samples(data, shape, steps)
        for s in progress_bar(samples, enabled=progress, total=steps, desc="calibrating ranges",
                              unit="sample", leave=False):
            batch.append(s)
            n += 1
            if len(batch) == batch_size:
                qat_model(np.concatenate(batch), training=False)
                batch = []
        if batch:
            qat_model(np.concatenate(batch), training=False)
    finally:
        for q in quantizers:
            q.calibrating = False
    return n


def _input_name(tensor, i):
    made = graph.producer(tensor)
    return made[0].name if made is not None else f"input_{i}"


def _is_relu(layer):
    """A ReLU/ReLU6 that TFLite fuses into the op producing its input."""
    if isinstance(layer, L.ReLU):
        cfg = layer.get_config()
        return (cfg.get("negative_slope") or 0.0) == 0.0 and (cfg.get("threshold") or 0.0) == 0.0 \
            and cfg.get("max_value") in (None, 6.0, 6)
    return isinstance(layer, L.Activation) and _activation_name(layer) in _RELU_NAMES


def _is_hard_swish(layer):
    return isinstance(layer, L.Activation) and _activation_name(layer) in HARD_SWISH_NAMES


def _is_hard_sigmoid(layer):
    return isinstance(layer, L.Activation) and _activation_name(layer) == "hard_sigmoid"


class _Rewriter:
    def __init__(self, freeze_bn, ema_decay, input_range, hard_swish_as_mul=False):
        self.freeze_bn, self.ema_decay, self.input_range = freeze_bn, ema_decay, input_range
        self.hard_swish_as_mul = hard_swish_as_mul
        self.names = set()
        self.pending = []          # (new_layer, fn() -> weights) once the graph is built
        self.float_layers = []

    # -- helpers ---------------------------------------------------------------------------
    def name(self, base):
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def quant(self, x, base, fixed_range=None):
        return ActivationQuantizer(self.ema_decay, fixed_range, name=self.name(child(base, "quant")))(x)

    def clone(self, layer):
        new = layer.__class__.from_config({**layer.get_config(), "name": self.name(layer.name)})
        if layer.weights:
            self.pending.append((new, layer.get_weights))
        return new

    def copy_weights(self):
        for layer, weights in self.pending:
            layer.set_weights(weights())

    # -- graph walk ------------------------------------------------------------------------
    def rewrite(self, model, inputs, top=False):
        nodes = graph.nodes_in_order(model)
        consumers = defaultdict(list)
        calls = defaultdict(int)
        for node in nodes:
            if node.operation is not None and not node.is_input:
                calls[id(node.operation)] += 1
                if calls[id(node.operation)] > 1 and not isinstance(node.operation, L.InputLayer):
                    raise ValueError(f"quantize_model: layer {node.operation.name!r} is called more than "
                                     f"once (shared layers are not supported)")
                for t in node.input_tensors:
                    consumers[id(t)].append(node)
        saved = getattr(self, "consumers", None), getattr(self, "model_outputs", None), getattr(self, "tensors", None)
        self.consumers = consumers
        self.model_outputs = {id(t) for t in model.outputs}
        self.tensors = tensors = {}
        for t, x in zip(model.inputs, tree.flatten(inputs)):
            if top:
                x = self.quant(x, _input_name(t, 0), self._input_range(t))
            tensors[id(t)] = x
        done = set()
        for node in nodes:
            if node.operation is None or node.is_input or id(node) in done:
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            outs = self.node(node, args, kwargs, done)
            for t, y in zip(node.outputs, tree.flatten(outs)):
                tensors.setdefault(id(t), y)
        outputs = tree.pack_sequence_as(graph.output_structure(model), [tensors[id(t)] for t in model.outputs])
        self.consumers, self.model_outputs, self.tensors = saved
        return outputs

    def _input_range(self, t):
        if self.input_range != "auto":
            return self.input_range
        if any(isinstance(n.operation, (L.Rescaling, L.Normalization)) for n in self.consumers[id(t)]):
            return (0.0, 255.0)
        return None

    def _only_consumer(self, t):
        users = self.consumers[id(t)]
        if len(users) == 1 and id(t) not in self.model_outputs:
            return users[0]
        return None

    def finish(self, t, y, name, fusable=()):
        """Quantises output `y` (of original tensor `t`) unless its only consumer is an activation
        TFLite fuses into the producing op (then the activation's output is quantised)."""
        user = self._only_consumer(t)
        if user is not None and any(f(user.operation) for f in fusable):
            return y
        return self.quant(y, name)

    def node(self, node, args, kwargs, done):
        layer = node.operation
        x = args[0] if args else None
        out = node.outputs[0]
        if graph.is_functional(layer):
            return self.rewrite(layer, args[0])
        if callable(getattr(layer, "standard_layers", None)):     # e.g. a fused MobileOne block
            return self.rewrite(layer.standard_layers(), args[0])
        if isinstance(layer, L.InputLayer) or preserves_scale(layer) or (
                isinstance(layer, L.Activation) and _activation_name(layer) == "linear"):
            return self.clone(layer)(*args, **kwargs)
        if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D)) and type(layer) in (L.Conv2D, L.DepthwiseConv2D):
            return self.conv(layer, x, out, done)
        if type(layer) is L.Dense:
            return self.dense(layer, x, out)
        if isinstance(layer, L.BatchNormalization) and len(out.shape) == 4 and layer.axis in (-1, 3):
            return self.per_channel(layer, x, out, np.ones(out.shape[-1], "float32"), bn=layer)
        if isinstance(layer, (L.Rescaling, L.Normalization)) and len(out.shape) == 4:
            scale_offset = per_channel_affine(layer, out.shape[-1])
            if scale_offset is not None:
                return self.per_channel(layer, x, out, *scale_offset, trainable=False)
        if callable(getattr(layer, "channel_scale", None)) and len(out.shape) == 4:   # e.g. LayerScale
            return self.per_channel(layer, x, out, layer.channel_scale)
        if _is_hard_sigmoid(layer):
            y = QuantHardSigmoid(name=self.name(layer.name))(x)
            return self.quant(y, layer.name, (0.0, 1.0))
        if self.hard_swish_as_mul and _is_hard_swish(layer):
            gate = QuantHardSigmoid(name=self.name(child(layer.name, "gate")))(x)
            gate = self.quant(gate, child(layer.name, "gate"), (0.0, 1.0))
            y = L.Multiply(name=self.name(layer.name))([x, gate])
            return self.finish(out, y, layer.name)
        if isinstance(layer, QUANTIZED_AS_IS):
            y = self.clone(layer)(*args, **kwargs)
            fixed = FIXED_RANGES.get("softmax" if isinstance(layer, L.Softmax) else
                                     _activation_name(layer) if isinstance(layer, L.Activation) else None)
            if fixed is not None:
                return self.quant(y, layer.name, fixed)
            fusable = (_is_relu,) if isinstance(layer, (L.Add, L.Subtract, L.Multiply)) else ()
            return self.finish(out, y, layer.name, fusable)
        # no int8 QAT form: keep it float, quantise what it hands on
        self.float_layers.append((layer.name, type(layer).__name__))
        op = self.clone(layer) if isinstance(layer, L.Layer) else layer
        y = op(*args, **kwargs)
        ys = [self.quant(v, layer.name) if len(tree.flatten(y)) == 1 else v for v in tree.flatten(y)]
        return tree.pack_sequence_as(y, ys)

    # -- replacements ----------------------------------------------------------------------
    def conv(self, layer, x, out, done):
        cfg = layer.get_config()
        if cfg.get("data_format", "channels_last") != "channels_last" or cfg.get("groups", 1) != 1:
            raise ValueError(f"quantize_model: {layer.name}: only channels_last, groups=1 convs are "
                             f"supported (got data_format={cfg.get('data_format')}, groups={cfg.get('groups')})")
        depthwise = isinstance(layer, L.DepthwiseConv2D)
        bn = None
        user = self._only_consumer(out)
        linear = _activation_name(layer) == "linear"
        if linear and user is not None and type(user.operation) is L.BatchNormalization \
                and user.operation.axis in (-1, 3):
            bn = user.operation
            done.add(id(user))
            out = user.outputs[0]          # the conv's result stands for the BN's output
        q = QuantConv(None if depthwise else cfg["filters"], cfg["kernel_size"], cfg["strides"],
                      cfg["padding"], cfg["dilation_rate"], depthwise=depthwise,
                      depth_multiplier=cfg.get("depth_multiplier", 1), use_bias=cfg["use_bias"],
                      batch_norm=bn is not None, freeze_bn=self.freeze_bn or (bn is not None and not bn.trainable),
                      name=self.name(layer.name), **_bn_args(bn))
        q.trainable = layer.trainable
        self.pending.append((q, lambda: layer.get_weights() + (_bn_weights(bn) if bn else [])))
        y = q(x)
        if not linear:
            return self.activation(layer, y)
        y = self.finish(out, y, bn.name if bn else layer.name, (_is_relu, _is_hard_sigmoid))
        self.tensors[id(out)] = y
        return y

    def dense(self, layer, x, out):
        cfg = layer.get_config()
        q = QuantDense(cfg["units"], cfg["use_bias"], name=self.name(layer.name))
        q.trainable = layer.trainable
        self.pending.append((q, layer.get_weights))
        y = q(x)
        if _activation_name(layer) != "linear":
            return self.activation(layer, y)
        return self.finish(out, y, layer.name, (_is_relu,))

    def activation(self, layer, y):
        """A conv/dense's built-in activation as its own quantised layer."""
        y = self.quant(y, child(layer.name, "pre_act")) if _activation_name(layer) not in _RELU_NAMES else y
        act = _activation_name(layer)
        if act == "hard_sigmoid":
            return self.quant(QuantHardSigmoid(name=self.name(child(layer.name, "act")))(y), layer.name, (0.0, 1.0))
        y = L.Activation(layer.activation, name=self.name(child(layer.name, "act")))(y)
        return self.quant(y, layer.name, FIXED_RANGES.get(act))

    def per_channel(self, layer, x, out, scale, offset=None, bn=None, trainable=True):
        """A per-channel affine map (BN, preprocessing, LayerScale) as a 1x1 depthwise QuantConv:
        per-channel weight scales make each channel's factor exact in int8."""
        c = int(out.shape[-1])
        q = QuantConv(kernel_size=1, depthwise=True, use_bias=offset is not None,
                      batch_norm=bn is not None, freeze_bn=self.freeze_bn or (bn is not None and not bn.trainable),
                      name=self.name(layer.name), **_bn_args(bn))

        def weights():
            w = [np.reshape(np.asarray(scale() if callable(scale) else scale, "float32"), (1, 1, c, 1))]
            if offset is not None:
                w.append(np.asarray(offset, "float32"))
            return w + (_bn_weights(bn) if bn else [])
        self.pending.append((q, weights))
        y = q(x)
        q.trainable = trainable and layer.trainable
        return self.finish(out, y, layer.name, (_is_relu, _is_hard_sigmoid))


def _bn_args(bn):
    if bn is None:
        return {}
    return {"bn_epsilon": bn.epsilon, "bn_momentum": bn.momentum}


def _bn_weights(bn):
    """[gamma, beta, moving_mean, moving_variance] (ones/zeros where BN has no scale/center)."""
    c = int(bn.moving_mean.shape[0])
    gamma = np.asarray(bn.gamma) if bn.scale else np.ones(c, "float32")
    beta = np.asarray(bn.beta) if bn.center else np.zeros(c, "float32")
    return [gamma, beta, np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)]

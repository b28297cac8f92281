"""MobileOne block (Vasu et al., 2023): over-parameterised at train time, one conv at inference.

Train time: `num_conv_branches` kxk conv+BN branches, a 1x1 conv+BN "scale" branch (k > 1) and a
BN-only identity branch (same shape in and out), summed, then [SE] and ReLU. Every branch is
linear, so the sum folds exactly into one kxk conv with bias (`fused_kernel_and_bias`);
`keras_mobile.reparameterize(model)` swaps every block for its fused form.

A composite layer (unlike the flat MobileNet blocks) because reparameterization replaces the
whole block; sublayer names follow timm `MobileOneBlock` (`conv_kxk.{i}.conv`, `conv_kxk.{i}.bn`,
`conv_scale.*`, `identity`, `attn.fc1/fc2`, fused: `reparam_conv`).
"""
import keras
import numpy as np
from keras import ops
from keras_mobile import graph
from keras_mobile.layers.naming import child, to_layer_name


def _conv(filters, kernel, strides, depthwise, use_bias, name):
    if depthwise:
        return keras.layers.DepthwiseConv2D(kernel, strides, padding="valid", use_bias=use_bias, name=name)
    return keras.layers.Conv2D(filters, kernel, strides, padding="valid", use_bias=use_bias, name=name)


@keras.saving.register_keras_serializable(package="keras_mobile")
class MobileOneBlock(keras.layers.Layer):
    def __init__(self, filters, kernel_size=3, strides=1, depthwise=False, num_conv_branches=1,
                 se_channels=0, inference_mode=False, bn_eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = int(filters), int(kernel_size), int(strides)
        self.depthwise, self.num_conv_branches = bool(depthwise), int(num_conv_branches)
        self.se_channels, self.inference_mode, self.bn_eps = int(se_channels), bool(inference_mode), bn_eps

    def build(self, input_shape):
        in_ch = input_shape[-1]
        if self.depthwise and in_ch != self.filters:
            raise ValueError(f"{self.name}: a depthwise MobileOne block keeps its channels "
                             f"({in_ch} in, {self.filters} requested)")
        k, s, dw = self.kernel_size, self.strides, self.depthwise
        bn = lambda n: keras.layers.BatchNormalization(epsilon=self.bn_eps, momentum=0.9, name=n)  # noqa: E731
        self.has_identity = in_ch == self.filters and s == 1
        if self.inference_mode:
            self.reparam_conv = _conv(self.filters, k, s, dw, True, "reparam_conv")
        else:
            # flat lists of layers (Keras tracks those; tuples inside lists it would not)
            self.kxk_convs = [_conv(self.filters, k, s, dw, False, to_layer_name(f"conv_kxk.{i}.conv"))
                              for i in range(self.num_conv_branches)]
            self.kxk_norms = [bn(to_layer_name(f"conv_kxk.{i}.bn")) for i in range(self.num_conv_branches)]
            self.scale_conv = (_conv(self.filters, 1, s, dw, False, to_layer_name("conv_scale.conv"))
                               if k > 1 else None)
            self.scale_norm = bn(to_layer_name("conv_scale.bn")) if k > 1 else None
            self.identity = bn("identity") if self.has_identity else None
        if self.se_channels:
            self.fc1 = keras.layers.Conv2D(self.se_channels, 1, use_bias=True, name=to_layer_name("attn.fc1"))
            self.fc2 = keras.layers.Conv2D(self.filters, 1, use_bias=True, name=to_layer_name("attn.fc2"))
        # build sublayers now so weights exist before the first call (needed to load checkpoints)
        pad = (k - 1) // 2
        padded = (input_shape[0], None if input_shape[1] is None else input_shape[1] + 2 * pad,
                  None if input_shape[2] is None else input_shape[2] + 2 * pad, in_ch)
        if self.inference_mode:
            self.reparam_conv.build(padded)
            out_shape = self.reparam_conv.compute_output_shape(padded)
        else:
            for conv, norm in self.branches:
                conv.build(padded)
                out_shape = conv.compute_output_shape(padded)
                norm.build(out_shape)
            if self.scale_conv is not None:
                self.scale_conv.build(input_shape)
                self.scale_norm.build(out_shape)
            if self.identity is not None:
                self.identity.build(input_shape)
        if self.se_channels:
            self.fc1.build((None, 1, 1, self.filters))
            self.fc2.build((None, 1, 1, self.se_channels))

    @property
    def branches(self):
        return list(zip(self.kxk_convs, self.kxk_norms))

    def _pad(self, x):
        p = (self.kernel_size - 1) // 2
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]) if p else x

    def _scale_branch(self, x):
        """The 1x1 "scale" conv. Strided, it runs as a stride-1 conv on the subsampled input (the same
        numbers): TensorFlow 2.21's oneDNN backward-weights kernel for a strided 1x1 conv with fewer
        input channels than its 16-channel block (the stem: 3) writes past its workspace and corrupts
        the heap (oneDNN issue 6035; scripts/mobileone_train_crash.py)."""
        s = self.strides
        if s == 1:
            return self.scale_conv(x)
        x = x[:, ::s, ::s, :]
        if self.depthwise:
            return ops.depthwise_conv(x, self.scale_conv.kernel, strides=1, padding="valid")
        return ops.conv(x, self.scale_conv.kernel, strides=1, padding="valid")

    def call(self, x, training=None):
        xp = self._pad(x)
        if self.inference_mode:
            y = self.reparam_conv(xp)
        else:
            y = None
            for conv, norm in self.branches:
                b = norm(conv(xp), training=training)
                y = b if y is None else y + b
            if self.scale_conv is not None:
                y = y + self.scale_norm(self._scale_branch(x), training=training)
            if self.identity is not None:
                y = y + self.identity(x, training=training)
        if self.se_channels:
            s = ops.mean(y, axis=(1, 2), keepdims=True)
            s = ops.sigmoid(self.fc2(ops.relu(self.fc1(s))))
            y = y * s
        return ops.relu(y)

    def compute_output_shape(self, input_shape):
        k, s = self.kernel_size, self.strides
        pad = (k - 1) // 2
        size = lambda d: None if d is None else (d + 2 * pad - k) // s + 1  # noqa: E731
        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.filters)

    # --- reparameterization -------------------------------------------------------------
    def _fold(self, kernel, norm):
        gamma, beta, mean, var = (np.asarray(w) for w in norm.get_weights())
        t = gamma / np.sqrt(var + norm.epsilon)
        axis_shape = (1, 1, -1, 1) if self.depthwise else (1, 1, 1, -1)
        return kernel * t.reshape(axis_shape), beta - mean * t

    def fused_kernel_and_bias(self):
        """(kernel, bias) of the single conv equal to the sum of all branches (Keras layout)."""
        if self.inference_mode:
            return tuple(np.asarray(w) for w in self.reparam_conv.get_weights())
        k = self.kernel_size
        kernel, bias = 0.0, 0.0
        for conv, norm in self.branches:
            kk, bb = self._fold(np.asarray(conv.get_weights()[0]), norm)
            kernel, bias = kernel + kk, bias + bb
        if self.scale_conv is not None:
            ks, bs = self._fold(np.asarray(self.scale_conv.get_weights()[0]), self.scale_norm)
            p = (k - 1) // 2
            kernel = kernel + np.pad(ks, [[p, p], [p, p], [0, 0], [0, 0]])
            bias = bias + bs
        if self.identity is not None:
            c = self.filters
            eye = np.zeros((k, k, c, 1) if self.depthwise else (k, k, c, c), np.float32)
            centre = (k - 1) // 2
            if self.depthwise:
                eye[centre, centre, :, 0] = 1.0
            else:
                eye[centre, centre, np.arange(c), np.arange(c)] = 1.0
            ki, bi = self._fold(eye, self.identity)
            kernel, bias = kernel + ki, bias + bi
        return kernel.astype(np.float32), np.asarray(bias, np.float32)

    def input_channel_kernels(self):
        """Kernels whose axis -2 runs over this block's input channels (int8 export,
        `tflite.dead_inputs`): the fused conv's (a depthwise one's too: [k, k, channels, 1]); none for
        the train-time form."""
        return [self.reparam_conv.kernel] if self.inference_mode else []

    def equalization_conv(self):
        """The conv this block is ReLU(conv(zero-padded input)) of, for int8 export's cross-layer
        equalization (`tflite.equalization`): the fused conv; None for the train-time form or
        with SE (its gate reads the conv's output)."""
        return self.reparam_conv if self.inference_mode and not self.se_channels else None

    def fused(self):
        """A new block in inference mode holding the folded weights."""
        cfg = {**self.get_config(), "inference_mode": True}
        block = MobileOneBlock.from_config(cfg)
        block.build(graph.built_input_shape(self))
        block.reparam_conv.set_weights(list(self.fused_kernel_and_bias()))
        if self.se_channels:
            block.fc1.set_weights(self.fc1.get_weights())
            block.fc2.set_weights(self.fc2.get_weights())
        return block

    def standard_layers(self):
        """The fused block as a functional model of plain Keras layers that computes the same:
        ZeroPadding2D, conv with bias, [SE: pool, 1x1 conv, ReLU, 1x1 conv, sigmoid, Multiply],
        ReLU, holding copies of its weights and named after the block (`<name>-reparam_conv`,
        `<name>-attn-fc1`, ...). QAT rewrites a block through it layer by layer."""
        if not self.inference_mode:
            raise ValueError(f"{self.name} is a train-time block: call fused() first")
        L, n, k = keras.layers, self.name, self.kernel_size
        x = inp = keras.Input(batch_shape=graph.built_input_shape(self))
        if (k - 1) // 2:
            x = L.ZeroPadding2D((k - 1) // 2, name=child(n, "pad"))(x)
        conv = _conv(self.filters, k, self.strides, self.depthwise, True, child(n, "reparam_conv"))
        y = conv(x)
        conv.set_weights(self.reparam_conv.get_weights())
        if self.se_channels:
            s = L.GlobalAveragePooling2D(keepdims=True, name=child(n, "attn.pool"))(y)
            for src, sub, act in ((self.fc1, "attn.fc1", "relu"), (self.fc2, "attn.fc2", "sigmoid")):
                fc = L.Conv2D(src.filters, 1, use_bias=True, name=child(n, sub))
                s = fc(s)
                fc.set_weights(src.get_weights())
                s = L.Activation(act, name=child(n, sub + ".act"))(s)
            y = L.Multiply(name=child(n, "attn.scale"))([y, s])
        return keras.Model(inp, L.ReLU(name=child(n, "act"))(y), name=n)

    def timm_keys(self):
        """[(variable, timm key relative to this block's module path)]."""
        pairs = []

        def conv_bn(conv, norm, prefix):
            pairs.append((conv.kernel, f"{prefix}.conv.weight"))
            bn(norm, f"{prefix}.bn")

        def bn(norm, prefix):
            for var, key in ((norm.gamma, "weight"), (norm.beta, "bias"),
                             (norm.moving_mean, "running_mean"), (norm.moving_variance, "running_var")):
                pairs.append((var, f"{prefix}.{key}"))

        if self.inference_mode:
            pairs += [(self.reparam_conv.kernel, "reparam_conv.weight"),
                      (self.reparam_conv.bias, "reparam_conv.bias")]
        else:
            for i, (conv, norm) in enumerate(self.branches):
                conv_bn(conv, norm, f"conv_kxk.{i}")
            if self.scale_conv is not None:
                conv_bn(self.scale_conv, self.scale_norm, "conv_scale")
            if self.identity is not None:
                bn(self.identity, "identity")
        if self.se_channels:
            pairs += [(self.fc1.kernel, "attn.fc1.weight"), (self.fc1.bias, "attn.fc1.bias"),
                      (self.fc2.kernel, "attn.fc2.weight"), (self.fc2.bias, "attn.fc2.bias")]
        return pairs

    def macs(self, input_shape):
        """Multiply-accumulates of this block as built (all branches when not fused)."""
        out = self.compute_output_shape(input_shape)
        hw = out[1] * out[2]
        in_ch = input_shape[-1]
        per_tap = 1 if self.depthwise else in_ch
        k2 = self.kernel_size ** 2
        if self.inference_mode:
            total = hw * self.filters * per_tap * k2
        else:
            total = self.num_conv_branches * hw * self.filters * per_tap * k2
            if self.kernel_size > 1:
                total += hw * self.filters * per_tap
        if self.se_channels:
            total += 2 * self.filters * self.se_channels
        return total

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "depthwise": self.depthwise,
                "num_conv_branches": self.num_conv_branches, "se_channels": self.se_channels,
                "inference_mode": self.inference_mode, "bn_eps": self.bn_eps}

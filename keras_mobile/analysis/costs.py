"""MAC formulas (the usual "GMACs" convention, = torch FlopCounterMode FLOPs / 2) and the shape
and byte helpers the profiler counts with. Only convolutions, dense layers and the matmuls of
attention count MACs; custom layers declare their own with a `macs(input_shape)` method."""
import numpy as np


def _shape(t, batch):
    s = tuple(t.shape) if hasattr(t, "shape") else tuple(t)
    return tuple(batch if (i == 0 and d is None) else d for i, d in enumerate(s))


def _numel(shape):
    if any(d is None for d in shape):
        raise ValueError(f"cannot profile a dynamic shape {shape}; build the model with a static "
                         f"input_shape or pass input_shape=(H, W, C)")
    return int(np.prod(shape)) if shape else 1


def _nbytes(var, dtype_bytes):
    return int(np.prod(var.shape)) * dtype_bytes if var.shape else dtype_bytes


def conv_macs(layer, in_shape, out_shape):
    """Conv1D/2D/3D, DepthwiseConv, grouped conv, SeparableConv, Conv2DTranspose."""
    cls = type(layer).__name__
    k = int(np.prod(layer.kernel_size))
    out_spatial = _numel(out_shape[1:-1])
    cin, cout = in_shape[-1], out_shape[-1]
    if "Separable" in cls:
        mult = layer.depth_multiplier
        return out_spatial * cin * mult * k + out_spatial * cin * mult * cout
    if "Depthwise" in cls:
        return out_spatial * cout * k  # cout = cin * depth_multiplier; one tap per output channel
    if "Transpose" in cls:
        return _numel(in_shape[1:-1]) * cin * cout * k
    groups = getattr(layer, "groups", 1) or 1
    return out_spatial * cout * k * (cin // groups)


def dense_macs(layer, in_shape, out_shape):
    return _numel(in_shape[1:-1]) * in_shape[-1] * out_shape[-1]


def mha_macs(layer, in_shapes):
    """keras.layers.MultiHeadAttention: projections + the two matmuls."""
    q = in_shapes[0]
    v = in_shapes[1] if len(in_shapes) > 1 else q
    k = in_shapes[2] if len(in_shapes) > 2 else v
    h, kd = layer.num_heads, layer.key_dim
    vd = layer.value_dim or kd
    nq, nk = _numel(q[1:-1]), _numel(k[1:-1])
    out_shape = layer.get_config().get("output_shape")      # an int, a tuple or None (= query width)
    out_dim = _numel(out_shape if isinstance(out_shape, (tuple, list)) else (out_shape,)) if out_shape else q[-1]
    return (nq * q[-1] * h * kd + nk * k[-1] * h * kd + nk * v[-1] * h * vd
            + h * nq * nk * (kd + vd) + nq * h * vd * out_dim)


def _known_macs(layer, in_shapes, out_shapes):
    cls = type(layer).__name__
    single = in_shapes[0] if in_shapes else None
    if cls in ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
               "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        return conv_macs(layer, single, out_shapes[0])
    if cls in ("Dense", "EinsumDense") and cls == "Dense":
        return dense_macs(layer, single, out_shapes[0])
    if cls == "MultiHeadAttention":
        return mha_macs(layer, in_shapes)
    return None


def ceil_div(a, b):
    return -(-a // b)

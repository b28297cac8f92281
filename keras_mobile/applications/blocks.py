"""Architecture as data: block-table rows and the one registry of block types.

A row (`BlockSpec`) names one block of a table, readable like timm's block strings
(`uir_r2_a3_k5_s1_e4_c96`) and checkable like Model Garden's BlockSpec tables: fields are named
and validated against the registry when the table is built. `BLOCKS` maps each row type to its
build function beside its description; `builder.build_trunk` walks the rows of every family
(MobileNetV3/V4, MobileOne, EfficientFormer) through it. A build function gets the row and a
`BlockContext` (the model spec, the row's layer names, stride/dilation after the output-stride
rule, drop-path rate) and returns the row's output tensor.
"""
import math
from dataclasses import dataclass, replace
from typing import Callable, Optional

import keras

from keras_mobile import layers as L
from keras_mobile.layers.meta_blocks import meta_block_3d, meta_block_4d
from keras_mobile.layers.mobileone_block import MobileOneBlock
from keras_mobile.layers.naming import child, to_layer_name


def make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """timm/TF channel rounding: nearest multiple of divisor, never more than 10% down."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def round_channels(c, multiplier):
    return make_divisible(c * multiplier) if multiplier != 1.0 else c


@dataclass(frozen=True)
class BlockSpec:
    """One table row; `repeat` copies are built (the first one takes `stride`)."""
    type: str
    out: int = 0             # output width (0: the input width, for rows that keep it)
    stride: int = 1
    kernel: int = 3          # dw kernel (ir/ds), conv kernel (cn/er/stems), mid dw (uir, 0 = none), kv dw (mqa)
    start_kernel: int = 0    # uir: depthwise conv before the expansion (0 = none)
    expand: float = 1.0      # expansion ratio (ir/er/uir: of the input width; meta4d/meta3d: MLP ratio)
    se: float = 0.0          # SE ratio (ir/ds: of the expanded/input channels; mobileone: > 0 turns SE on)
    act: Optional[str] = None  # overrides the model's activation
    repeat: int = 1
    heads: int = 0
    key_dim: int = 0
    kv_stride: int = 1
    skip: Optional[bool] = None  # None: residual when shapes allow ("cn": never)
    mid: Optional[int] = None    # exact hidden width (ir/er/uir expansion, meta MLP), overrides `expand`
    branches: int = 1            # mobileone: parallel conv branches (train-time form)
    choices: tuple = ()          # "choice" rows: candidate rows (a search's supernet), mixed by ChoiceMix

    def __post_init__(self):
        kind = BLOCKS.get(self.type)
        if kind is None:
            raise ValueError(f"unknown block type {self.type!r}; known: {sorted(BLOCKS)}")
        if self.out < 0 or self.stride not in (1, 2) or self.repeat < 1 or self.branches < 1:
            raise ValueError(f"bad block spec {self}")
        if self.out == 0 and kind.needs_out:
            raise ValueError(f"a {self.type!r} row needs its output width `out`: {self}")
        if self.type in ("mqa", "mha") and (self.heads <= 0 or self.key_dim <= 0):
            raise ValueError(f"attention block needs heads and key_dim: {self}")
        if bool(self.choices) != (self.type == "choice"):
            raise ValueError(f"a 'choice' row and only a choice row lists candidate rows in `choices`: {self}")
        if any(c.type == "choice" or BLOCKS[c.type].path or BLOCKS[c.type].names != 1 for c in self.choices):
            raise ValueError(f"choice candidates must be rows taking one module index (no nested choices, "
                             f"no fixed-path rows): {self}")
        if self.mid is not None and (kind.hidden is None or self.mid <= 0):
            raise ValueError(f"mid (exact hidden width) needs a positive int on a row with a hidden "
                             f"width ({', '.join(k for k, v in BLOCKS.items() if v.hidden)}): {self}")


@dataclass(frozen=True)
class BlockContext:
    """What a build function needs beyond its row."""
    spec: object             # the ModelSpec being built
    names: tuple             # layer names (timm paths in naming form) of the row's modules
    strides: int             # stride after the output-stride rule
    dilation: int = 1
    drop_path: float = 0.0
    index: int = 0           # position of the row in its stage (stem rows: 0, 1, ...)

    @property
    def name(self):
        return self.names[0] if self.names else None

    def out(self, row):
        return round_channels(row.out, self.spec.channel_multiplier)

    def act(self, row):
        return row.act or self.spec.act

    def common(self):
        return dict(bn_eps=self.spec.bn_eps, padding=self.spec.padding, drop_path_rate=self.drop_path,
                    name=self.name)


@dataclass(frozen=True)
class BlockType:
    build: Callable                   # build(x, row, ctx) -> tensor
    doc: str
    hidden: Optional[Callable] = None  # (row, in_width) -> hidden width: the search's "mid" knob
    tap: Optional[str] = None         # sub-path whose output a strided row downsamples (P4_expanded);
    #                                   None: the row's input. A callable row -> sub-path or None.
    names: int = 1                    # module indices the row takes in its stage (MobileOne pair: 2)
    path: Optional[str] = None        # fixed module path ("{stage}" = stage index) instead of an index
    depth: bool = True                # counts in the drop-path schedule
    atrous: Optional[str] = None      # over the output stride: "dilate", "keep" (stride 1, no dilation)
    needs_out: bool = True

    def residual(self, row, in_width, out, stride):
        """Whether the built row adds its input (the layers apply the same rule)."""
        if row.type == "cn":
            return bool(row.skip)
        return row.skip is not False and in_width == out and (stride == 1 or row.type in ("mqa", "mha"))

    def tap_path(self, row):
        return self.tap(row) if callable(self.tap) else self.tap


def _expansion(row, in_width):
    return row.mid or make_divisible(in_width * row.expand)


def _mlp_hidden(row, in_width):
    return row.mid or int(in_width * row.expand)


# MobileNetV3/V4 rows ----------------------------------------------------------------------------
def _conv_stem(x, b, c):
    width = b.out if c.spec.fix_stem else c.out(b)
    return L.conv_bn_act(x, width, b.kernel, b.stride, act=c.act(b), bn_eps=c.spec.bn_eps,
                         padding=c.spec.padding, conv_name="conv_stem", bn_name="bn1", act_name="act1")


def _cn(x, b, c):
    return L.conv_block(x, c.out(b), b.kernel, c.strides, act=c.act(b), skip=bool(b.skip),
                        dilation=c.dilation, **c.common())


def _ds(x, b, c):
    se = make_divisible(x.shape[-1] * b.se) if b.se else 0
    return L.depthwise_separable(x, c.out(b), b.kernel, c.strides, c.act(b), se, c.spec.se_act,
                                 c.spec.se_gate, noskip=b.skip is False, dilation=c.dilation, **c.common())


def _ir(x, b, c):
    mid = _expansion(b, x.shape[-1])
    se = make_divisible(mid * b.se) if b.se else 0
    return L.inverted_residual(x, c.out(b), mid, b.kernel, c.strides, c.act(b), se, c.spec.se_act,
                               c.spec.se_gate, noskip=b.skip is False, dilation=c.dilation, **c.common())


def _er(x, b, c):
    return L.fused_inverted_bottleneck(x, c.out(b), _expansion(b, x.shape[-1]), b.kernel, c.strides,
                                       c.act(b), noskip=b.skip is False, dilation=c.dilation, **c.common())


def _uir(x, b, c):
    return L.universal_inverted_bottleneck(x, c.out(b), _expansion(b, x.shape[-1]), b.start_kernel,
                                           b.kernel, c.strides, c.act(b), c.spec.layer_scale,
                                           noskip=b.skip is False, dilation=c.dilation, **c.common())


def _attention(x, b, c):
    return L.mobile_attention(x, c.out(b), b.heads, b.key_dim, b.key_dim, b.kv_stride, b.kernel,
                              kv_heads=1 if b.type == "mqa" else b.heads, layer_scale=c.spec.layer_scale,
                              noskip=b.skip is False, **c.common())


# MobileOne rows -----------------------------------------------------------------------------------
def _se_channels(channels):
    """timm SEModule: rd_ratio 1/16, divisor 8, no round-down limit."""
    return make_divisible(channels / 16, 8, round_limit=0.0)


def _mobileone_block(b, c, filters, kernel, strides, depthwise, se_width, name):
    return MobileOneBlock(filters, kernel, strides, depthwise=depthwise, num_conv_branches=b.branches,
                          se_channels=_se_channels(se_width) if b.se else 0,
                          inference_mode=c.spec.inference_mode, name=name)


def _mobileone(x, b, c):
    in_width, out = x.shape[-1], c.out(b)
    x = _mobileone_block(b, c, in_width, 3, c.strides, True, in_width, c.names[0])(x)
    return _mobileone_block(b, c, out, 1, 1, False, out, c.names[1])(x)


def _mobileone_stem(x, b, c):
    return _mobileone_block(b, c, c.out(b), b.kernel, b.stride, False, c.out(b), "stem")(x)


# EfficientFormer rows -----------------------------------------------------------------------------
def _ef_stem(x, b, c):
    n = c.index + 1
    return L.conv_bn_act(x, b.out, b.kernel, b.stride, act="relu", use_bias=True,
                         conv_name=to_layer_name(f"stem.conv{n}"), bn_name=to_layer_name(f"stem.norm{n}"),
                         act_name=to_layer_name(f"stem.act{n}"))


def _downsample(x, b, c):
    return L.conv_bn_act(x, b.out, b.kernel, c.strides, act=None, use_bias=True,
                         conv_name=child(c.name, "conv"), bn_name=child(c.name, "norm"))


def _meta4d(x, b, c):
    return meta_block_4d(x, hidden=_mlp_hidden(b, x.shape[-1]), drop_path_rate=c.drop_path, name=c.name)


def _flat(x, b, c):
    return keras.layers.Reshape((x.shape[1] * x.shape[2], x.shape[3]), name=c.name)(x)


def _meta3d(x, b, c):
    on_map = len(x.shape) == 4      # a supernet's Meta3D candidate in place of a Meta4D: tokens and back
    if on_map:
        h, w, dim = x.shape[1:]
        x = keras.layers.Reshape((h * w, dim), name=child(c.name, "to_tokens"))(x)
    grid = math.isqrt(x.shape[1])
    y = meta_block_3d(x, hidden=_mlp_hidden(b, x.shape[-1]), resolution=grid, drop_path_rate=c.drop_path,
                      name=c.name)
    return keras.layers.Reshape((h, w, dim), name=child(c.name, "to_map"))(y) if on_map else y


def _token_norm(x, b, c):
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")(x)
    grid = math.isqrt(x.shape[1])
    return keras.layers.Reshape((grid, grid, x.shape[-1]), name="tokens_to_map")(x)


# search rows ------------------------------------------------------------------------------------
def _choice(x, b, c):
    """Every candidate at module path `<row>.choices.<k>`, mixed by a ChoiceMix (`<row>.choice`)."""
    outs = [BLOCKS[cand.type].build(x, cand, replace(c, names=tuple(child(n, f"choices.{k}") for n in c.names)))
            for k, cand in enumerate(b.choices)]
    return L.ChoiceMix(len(outs), name=child(c.name, "choice"))(outs)


def _identity(x, b, c):
    return x


def _uir_tap(row):
    return "pw_exp.act" if row.kernel else None   # the start dw takes the stride when no mid dw


BLOCKS = {
    # MobileNetV3/V4 (timm `_gen_mobilenet_v3` / `_gen_mobilenet_v4` block strings)
    "conv_stem": BlockType(_conv_stem, "MobileNet stem: kxk strided conv + BN + act (`conv_stem`, `bn1`, `act1`)",
                           names=0),
    "cn": BlockType(_cn, "ConvBNAct", atrous="dilate"),
    "ds": BlockType(_ds, "DepthwiseSeparable (optional SE)", atrous="dilate"),
    "ir": BlockType(_ir, "InvertedResidual (MobileNetV2/V3, optional SE)", hidden=_expansion, tap="act1",
                    atrous="dilate"),
    "er": BlockType(_er, "FusedIB (timm EdgeResidual)", hidden=_expansion, atrous="dilate"),
    "uir": BlockType(_uir, "UniversalInvertedBottleneck (IB / ConvNext / ExtraDW / FFN)", hidden=_expansion,
                     tap=_uir_tap, atrous="dilate"),
    "mqa": BlockType(_attention, "Mobile multi-query attention"),
    "mha": BlockType(_attention, "Multi-head attention on the same template (ablation)"),
    # MobileOne (timm `mobileone_s*`)
    "mobileone_stem": BlockType(_mobileone_stem, "MobileOne stem: one full kxk MobileOneBlock (`stem`)", names=0),
    "mobileone": BlockType(_mobileone, "MobileOne pair: depthwise 3x3 then pointwise 1x1 MobileOneBlock "
                                       "(optional SE; two module indices)", names=2, atrous="keep"),
    # EfficientFormer (timm `efficientformer_l*`)
    "ef_stem": BlockType(_ef_stem, "EfficientFormer stem conv: 3x3/s2 conv + BN + ReLU (`stem.conv<n>`)",
                         names=0, depth=False),
    "downsample": BlockType(_downsample, "EfficientFormer stage downsampling: 3x3/s2 conv + BN",
                            path="stages.{stage}.downsample", depth=False),
    "meta4d": BlockType(_meta4d, "Meta4D: pool token mixer + conv MLP on a feature map", hidden=_mlp_hidden,
                        needs_out=False),
    "flat": BlockType(_flat, "Feature map -> tokens (timm `Flat`; takes a module index)", depth=False,
                      needs_out=False),
    "meta3d": BlockType(_meta3d, "Meta3D: attention (learned biases) + MLP on tokens", hidden=_mlp_hidden,
                        needs_out=False),
    "token_norm": BlockType(_token_norm, "Final LayerNorm on tokens (`norm`), tokens back to a map",
                            names=0, depth=False, needs_out=False),
    # search (keras_mobile.search.supernet)
    "choice": BlockType(_choice, "Supernet row: candidate rows (`choices`) mixed by Gumbel-softmax weights",
                        needs_out=False),
    "identity": BlockType(_identity, "No layers: a row a search removed (keeps its module index)",
                          depth=False, needs_out=False),
}


# row shorthands, named like timm's block-string prefixes ------------------------------------------
def cn(out, k=1, s=1, act=None, r=1):
    return BlockSpec("cn", out, s, k, act=act, repeat=r)


def ds(out, k=3, s=1, se=0.0, act=None, r=1):
    return BlockSpec("ds", out, s, k, se=se, act=act, repeat=r)


def ir(out, k=3, s=1, e=1.0, se=0.0, act=None, r=1):
    return BlockSpec("ir", out, s, k, expand=e, se=se, act=act, repeat=r)


def er(out, k=3, s=1, e=4.0, r=1):
    return BlockSpec("er", out, s, k, expand=e, repeat=r)


def uir(out, a=0, k=0, s=1, e=4.0, r=1):
    """a = start dw kernel, k = mid dw kernel (0 = absent), as in timm `uir_a?_k?`."""
    return BlockSpec("uir", out, s, k, start_kernel=a, expand=e, repeat=r)


def mqa(out, heads, key_dim, kv_stride=1, k=3, r=1):
    return BlockSpec("mqa", out, 1, k, heads=heads, key_dim=key_dim, kv_stride=kv_stride, repeat=r)

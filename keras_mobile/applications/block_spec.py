"""Architecture-as-data: one named row per block (repeat expanded by the builder).

Readable like timm's block strings (`uir_r2_a3_k5_s1_e4_c96`), checkable like Model Garden's
BlockSpec tables: fields are named and validated when the table is built.
"""
from dataclasses import dataclass
from typing import Optional

BLOCK_TYPES = {
    "cn": "ConvBNAct",
    "ds": "DepthwiseSeparable",
    "ir": "InvertedResidual (MobileNetV2/V3, optional SE)",
    "er": "FusedIB (timm EdgeResidual)",
    "uir": "UniversalInvertedBottleneck (IB / ConvNext / ExtraDW / FFN)",
    "mqa": "Mobile multi-query attention",
    "mha": "Multi-head attention on the same template (ablation)",
}


@dataclass(frozen=True)
class BlockSpec:
    type: str
    out: int
    stride: int = 1
    kernel: int = 3          # dw kernel (ir/ds), conv kernel (cn/er), mid dw (uir, 0 = none), kv dw (mqa)
    start_kernel: int = 0    # uir: depthwise conv before the expansion (0 = none)
    expand: float = 1.0
    se: float = 0.0          # SE ratio (of the expanded channels, timm se_from_exp)
    act: Optional[str] = None  # overrides the model's activation
    repeat: int = 1
    heads: int = 0
    key_dim: int = 0
    kv_stride: int = 1
    skip: Optional[bool] = None  # None: residual when shapes allow ("cn": never)
    mid: Optional[int] = None    # exact expansion width (ir/er/uir), overrides `expand` (search children)

    def __post_init__(self):
        if self.type not in BLOCK_TYPES:
            raise ValueError(f"unknown block type {self.type!r}; known: {sorted(BLOCK_TYPES)}")
        if self.out <= 0 or self.stride not in (1, 2) or self.repeat < 1:
            raise ValueError(f"bad block spec {self}")
        if self.type in ("mqa", "mha") and (self.heads <= 0 or self.key_dim <= 0):
            raise ValueError(f"attention block needs heads and key_dim: {self}")
        if self.mid is not None and (self.type not in ("ir", "er", "uir") or self.mid <= 0):
            raise ValueError(f"mid (exact expansion width) needs a positive int on an ir/er/uir block: {self}")


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


def make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """timm/TF channel rounding: nearest multiple of divisor, never more than 10% down."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v

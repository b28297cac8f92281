"""Published timm checkpoints: which tags exist per architecture, their classes and preprocessing.

Data in `keras_mobile/assets/timm_weights.json` (regenerate with scripts/gen_weights_table.py).
"""
import functools
import json
import os
from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ASSET = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "timm_weights.json")


@dataclass(frozen=True)
class WeightsInfo:
    timm_name: str
    tag: str
    hf_hub_id: str
    num_classes: int
    input_size: int
    mean: tuple
    std: tuple
    crop_pct: float
    interpolation: str

    @property
    def cache_name(self):
        return f"{self.timm_name}.{self.tag}"


@functools.lru_cache(maxsize=None)
def _table():
    with open(_ASSET) as f:
        return json.load(f)["models"]


def tags(timm_name):
    entry = _table().get(timm_name)
    return sorted(entry["tags"]) if entry else []


def default_tag(timm_name):
    entry = _table().get(timm_name)
    return entry["default_tag"] if entry else None


def check_tag(weights):
    """ValueError unless `weights` can name a checkpoint ('imagenet' or a tag): not a string, or
    a path (a file that does not exist)."""
    if not isinstance(weights, str):
        raise ValueError(f"weights must be None, 'imagenet', a timm tag or a file path, got {weights!r}")
    if os.sep in weights or weights.endswith((".safetensors", ".h5", ".bin", ".pth", ".keras")):
        raise ValueError(f"weights file not found: {weights}")


def resolve(timm_name, weights):
    """'imagenet' or a timm tag -> WeightsInfo; ValueError naming the valid choices otherwise."""
    check_tag(weights)
    entry = _table().get(timm_name)
    if entry is None:
        raise ValueError(f"no published timm weights for {timm_name!r}; use weights=None or a file path")
    tag = entry["default_tag"] if weights == "imagenet" else weights
    if tag not in entry["tags"]:
        raise ValueError(
            f"unknown weights {weights!r} for {timm_name}: not a file, 'imagenet' or a known tag. "
            f"Available tags: {', '.join(sorted(entry['tags']))}")
    cfg = entry["tags"][tag]
    return WeightsInfo(
        timm_name=timm_name, tag=tag, hf_hub_id=cfg["hf_hub_id"],
        num_classes=cfg.get("num_classes", 1000), input_size=cfg["input_size"][-1],
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)), std=tuple(cfg.get("std", IMAGENET_STD)),
        crop_pct=cfg.get("crop_pct", 0.875), interpolation=cfg.get("interpolation", "bicubic"))


def preprocessing_info(timm_name, weights):
    """mean/std/default input size for the given weights (the default tag's for None or a file);
    `weights` as for `keras_mobile.weights.source.parse` (or its WeightsSource)."""
    from keras_mobile.weights.source import parse
    return parse(timm_name, weights).preprocessing()

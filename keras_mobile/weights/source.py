"""The `weights=` argument, classified once into a `WeightsSource`.

Every place that needs to know what `weights` is (the loader, the preprocessing defaults, the
checkpoint's class count, fine-tuning) asks `parse(timm_name, weights)`; `parse` passes an
existing WeightsSource through, so a caller can parse once and hand the result on.
"""
import os
from dataclasses import dataclass
from typing import Optional

from keras_mobile.weights import registry
from keras_mobile.weights.errors import WeightsError

KINDS = ("none", "hub", "timm_file", "keras_file")
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl")


@dataclass(frozen=True, repr=False)
class WeightsSource:
    """What `weights=` names. kind: "none" (random init), "hub" (a published timm checkpoint:
    "imagenet" or a tag, resolved to `info`), "timm_file" (a timm-layout .safetensors file) or
    "keras_file" (a Keras .weights.h5 file); `value` is the argument as given."""
    timm_name: str
    kind: str
    value: object
    path: Optional[str] = None
    info: Optional[registry.WeightsInfo] = None

    def __repr__(self):          # error messages show the argument the user wrote
        return repr(self.value)

    @property
    def num_classes(self):
        """The checkpoint's classifier size when the registry knows it (hub), else None."""
        return self.info.num_classes if self.info is not None else None

    def preprocessing(self):
        """{"mean", "std", "default_size"} of these weights (the default tag's for none or a
        file; ImageNet's at 224 when the architecture has no published weights)."""
        info = self.info
        if info is None:
            tag = registry.default_tag(self.timm_name)
            if tag is None:
                return {"mean": registry.IMAGENET_MEAN, "std": registry.IMAGENET_STD, "default_size": 224}
            info = registry.resolve(self.timm_name, tag)
        return {"mean": info.mean, "std": info.std, "default_size": info.input_size}


def parse(timm_name, weights):
    """None, "imagenet", a timm tag, or a file path (str or os.PathLike) -> WeightsSource.

    timm_name: the architecture (selects the tags); or a function returning it, called only
    when `weights` names a tag (so a caller can skip building a model for files).
    Raises ValueError for an unknown tag, a missing file or another type, and WeightsError for a
    PyTorch pickle file (never unpickled)."""
    if isinstance(weights, WeightsSource):
        return weights
    lazy = callable(timm_name)
    if weights is None:
        return WeightsSource(None if lazy else timm_name, "none", None)
    value = weights
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)   # pathlib.Path works like the str path
    if isinstance(weights, str) and os.path.isfile(weights):
        timm_name = None if lazy else timm_name
        if weights.endswith(".h5"):
            return WeightsSource(timm_name, "keras_file", value, path=weights)
        if weights.endswith(PICKLE_SUFFIXES):
            raise WeightsError(f"{weights}: PyTorch pickle checkpoints are never unpickled here. "
                               f"Convert it to .safetensors (safetensors.torch.save_file).")
        return WeightsSource(timm_name, "timm_file", value, path=weights)
    registry.check_tag(weights)
    timm_name = timm_name() if lazy else timm_name
    return WeightsSource(timm_name, "hub", value, info=registry.resolve(timm_name, weights))

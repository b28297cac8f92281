"""The one model registry: constructor name -> family, timm architecture, constructor.

Each family file registers its constructors where it defines them
(`builder.define_constructor`), like timm's `@register_model`; nothing is found by
introspection. The CLI, analysis, training recipes and benchmarks all look models up here.
"""
from dataclasses import dataclass
from typing import Callable

FAMILIES = ("mobilenetv3", "mobilenetv4", "mobileone", "efficientformer")
_MODELS = {}


@dataclass(frozen=True)
class ModelEntry:
    name: str               # public constructor name, e.g. "MobileNetV4ConvS"
    family: str             # one of FAMILIES (selects the training recipe)
    timm_name: str          # timm architecture of the default configuration
    constructor: Callable

    @property
    def default_size(self):
        """Input size of the default published checkpoint (224 when none is published)."""
        from keras_mobile.weights.registry import preprocessing_info
        return preprocessing_info(self.timm_name, None)["default_size"]


def register(entry):
    if entry.family not in FAMILIES:
        raise ValueError(f"unknown family {entry.family!r} for {entry.name}; known: {FAMILIES}")
    if entry.name in _MODELS:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _MODELS[entry.name] = entry


def _models():
    import keras_mobile.applications  # noqa: F401  (the family modules register on import)
    return _MODELS


def entry(name):
    """The ModelEntry of `name` (case-insensitive); ValueError naming the known models."""
    models = _models()
    if name in models:
        return models[name]
    lower = {k.lower(): v for k, v in models.items()}
    if isinstance(name, str) and name.lower() in lower:
        return lower[name.lower()]
    raise ValueError(f"unknown model {name!r}; known: {', '.join(models)}")


def names():
    """Constructor names in definition order (MobileNetV3, MobileNetV4, MobileOne, EfficientFormer)."""
    return list(_models())


def list_models():
    """{constructor name: constructor}."""
    return {n: e.constructor for n, e in _models().items()}


def get_model(name):
    """The constructor of `name` (case-insensitive)."""
    return entry(name).constructor

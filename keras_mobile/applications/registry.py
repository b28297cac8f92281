"""The one model registry: constructor name -> family, timm architecture, constructor, table,
classifier layer names and feature endpoints.

Each family file registers its constructors where it defines them
(`builder.define_constructor`), like timm's `@register_model`; nothing is found by
introspection. The CLI, analysis, training (recipes, fine-tuning), heads, search and
benchmarks all look models up here.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

FAMILIES = ("mobilenetv3", "mobilenetv4", "mobileone", "efficientformer")
_MODELS = {}
_ALIASES = {}    # model name -> (constructor name, extra arguments)


@dataclass(frozen=True)
class ModelEntry:
    name: str               # public constructor name, e.g. "MobileNetV4ConvS"
    family: str             # one of FAMILIES (selects the training recipe)
    timm_name: str          # timm architecture of the default configuration
    constructor: Callable
    make_spec: Optional[Callable] = None   # (weights=None, **extra) -> ModelSpec (its block table)
    defaults: dict = field(default_factory=dict)   # the constructor's family arguments and defaults
    classifier: tuple = ()  # timm module paths of the Dense layer(s) producing the class logits
    features: dict = field(default_factory=dict, compare=False)   # output_stride -> endpoints seen

    @property
    def default_size(self):
        """Input size of the default published checkpoint (224 when none is published)."""
        from keras_mobile.weights.registry import preprocessing_info
        return preprocessing_info(self.timm_name, None)["default_size"]

    def spec(self, **extra):
        """The ModelSpec (block table) the constructor builds with these family arguments."""
        return self.make_spec(weights=None, **{**self.defaults, **extra})

    def feature_endpoints(self, output_stride=32):
        """{level: layer name} recorded when this model was built with `output_stride`
        ("P1".."P5": the last map of each stride, "P4_expanded"); builds a small headless
        model once if none was built yet. Levels a model does not reach are absent."""
        if output_stride not in self.features:
            size = (self.spec().fixed_size or 64,) * 2 + (3,)
            kw = {"output_stride": output_stride} if output_stride != 32 else {}
            self.constructor(include_top=False, weights=None, input_shape=size, **kw)
        return dict(self.features[output_stride])


def register(entry, aliases=None):
    if entry.family not in FAMILIES:
        raise ValueError(f"unknown family {entry.family!r} for {entry.name}; known: {FAMILIES}")
    if entry.name in _MODELS:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _MODELS[entry.name] = entry
    for alias, extra in (aliases or {}).items():
        _ALIASES[alias] = (entry.name, dict(extra))


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


def spec_of(model_name):
    """(ModelEntry, ModelSpec) of the table a model named `model_name` was built from (the
    constructor's defaults, or those of an alias such as "MobileNetV3SmallMinimal")."""
    models = _models()
    if model_name in _ALIASES:
        ctor, extra = _ALIASES[model_name]
        return models[ctor], models[ctor].spec(**extra)
    e = entry(model_name)
    return e, e.spec()


def classifier_paths():
    """Every registered model's classifier layer paths (timm module paths), in family order."""
    paths = []
    for e in _models().values():
        paths += [p for p in e.classifier if p not in paths]
    return tuple(paths)


def names():
    """Constructor names in definition order (MobileNetV3, MobileNetV4, MobileOne, EfficientFormer)."""
    return list(_models())


def list_models():
    """{constructor name: constructor}."""
    return {n: e.constructor for n, e in _models().items()}


def get_model(name):
    """The constructor of `name` (case-insensitive)."""
    return entry(name).constructor
